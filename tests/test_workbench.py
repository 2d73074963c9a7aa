"""The review workbench's data: the queue built from results, decisions in SQLite (audit, conflicts,
second looks after a regrade), and every output reading them."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from autograder.cli import main
from autograder.output.feedback import write_feedback
from autograder.output.gradebook import write_gradebook
from autograder.output.gradebook import csv_text
from autograder.output.intake_record import read_decisions
from autograder.output.similarity import CodeMatch, Entry, Pair, pairs_frame
from autograder.output.workbench.decisions import DecisionConflict, DecisionError, DecisionStore, adjustments
from autograder.output.workbench.queue import build_queue, evidence_hash, load_pairs

from result_fixtures import copy_results, fixture_result, write

NEEDS_REVIEW = "a002-partial~check~simple_rnn_accuracy"


def write_pairs(results, keys: tuple[str, str]) -> None:
    """similarity/pairs.csv as `autograder similarity` writes it (pairs_frame, csv_text)."""
    a, b = (fixture_result(k) for k in keys)
    entries = [Entry(key=k, student_id=r["submission"]["student_id"], student_name=r["submission"]["student_name"],
                     code="", prose="") for k, r in zip(keys, (a, b))]
    pair = Pair(entries[0], entries[1], code=CodeMatch(0.93, ("", "")))
    (results / "similarity").mkdir(exist_ok=True)
    (results / "similarity" / "pairs.csv").write_text(csv_text(pairs_frame([pair])))


@pytest.fixture
def results(tmp_path, assignment):
    root = copy_results(tmp_path / "RESULTS", assignment)
    write_pairs(root, ("a001-complete", "a004-late"))
    return root


def loaded(root):
    from autograder.output.store import open_results

    return open_results(root).load()


def item(root, item_id):
    return next(i for i in build_queue(loaded(root), load_pairs(root)) if i.id == item_id)


def decide(root, item_id, action, who="ta1", base_version=0, **fields):
    results, pairs = loaded(root), load_pairs(root)
    it = item(root, item_id)
    return DecisionStore(root).decide(item_id, result_key=it.key, student_id=it.student_id, action=action, who=who,
                                      evidence=evidence_hash(it, results, pairs, fields.get("check")),
                                      base_version=base_version, question=fields.pop("question", it.question),
                                      check=fields.pop("check", it.check), **fields)


def test_queue_lists_every_kind_of_item(results):
    items = {i.id: i for i in build_queue(loaded(results), load_pairs(results))}
    assert items[NEEDS_REVIEW].kind == "needs_review" and items[NEEDS_REVIEW].question == "q4"
    assert items["a002-partial~integrity~cnn~not_trained_on_test"].check == "cnn_accuracy"
    assert items["a002-partial~check~report_claims"].kind == "claims"
    assert items["a003-rejected~intake"].kind == "intake"
    assert items["pair~a001-complete~a004-late"].kind == "similarity"
    assert not [i for i in items if i.startswith("a004-late~")]  # nothing to decide for a clean result


def test_a_result_the_grader_failed_on_is_a_queue_item(results, assignment):
    """A grader error (made by the grader's own grader_error) waits for a person, with the stage it failed in."""
    from autograder.output.store import open_results
    from autograder.output.workbench.app import Session, Workbench, _env
    from autograder.pipeline.grade_one import grader_error

    failed = grader_error(fixture_result("a004-late"), assignment, "scoring", "Traceback ...\nKeyError: 'cnn'", [],
                          log=lambda line: None)
    write(results, "a004-late", failed, assignment)
    error = {i.id: i for i in build_queue(loaded(results), load_pairs(results))}["a004-late~error"]
    assert error.kind == "error" and "grader error in scoring: KeyError" in error.why
    workbench, ta = Workbench(open_results(results), assignment, "token", "ana"), Session(csrf="x", name="ana")
    page = _env.get_template("item.html.j2").render(page=workbench.item_page("a004-late~error", {}, ta), session=ta,
                                                    title="t")
    assert "grader_error" in page and "(traceback in the TA log)" in page and "Traceback ..." not in page


def test_decisions_have_an_audit_trail_and_refuse_a_silent_overwrite(results):
    first = decide(results, NEEDS_REVIEW, "score", score=3.0, reason="the RNN is there, 86%", who="ana")
    with pytest.raises(DecisionConflict) as conflict:  # a second TA who loaded the page before ana decided
        decide(results, NEEDS_REVIEW, "accept", who="bo", base_version=0)
    assert conflict.value.current.who == "ana" and conflict.value.current.score == 3.0
    second = decide(results, NEEDS_REVIEW, "score", who="bo", base_version=first.version, score=4.0,
                    reason="full marks after reading the cell")
    history = DecisionStore(results).history(NEEDS_REVIEW)
    assert [(h["who"], h["before"] and h["before"]["score"], h["after"]["score"]) for h in history] == [
        ("ana", None, 3.0), ("bo", 3.0, 4.0)]
    assert second.version == 2 and history[1]["reason"] == "full marks after reading the cell"
    with pytest.raises(DecisionError, match="needs a reason"):
        decide(results, NEEDS_REVIEW, "score", base_version=2, score=1.0, reason=" ")


def test_gradebook_canvas_and_pages_read_the_decisions(results, assignment):
    decide(results, NEEDS_REVIEW, "score", score=3.0, reason="RNN trained, accuracy 86%", who="ana",
           comment="Save the model under the template's name next time.")
    decide(results, "a002-partial~integrity~cnn~not_trained_on_test", "accept", who="ana")
    decide(results, "pair~a001-complete~a004-late", "clear", reason="shared template code only", who="ana")
    write_gradebook(results, results / "gradebook.csv", assignment)
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    sid = fixture_result("a002-partial")["submission"]["student_id"]
    assert book.loc[sid, "q4"] == 3.0 + 3.0  # architecture 3 + the decided 3 of the accuracy check
    assert book.loc[sid, "total"] == pytest.approx(61.2 + 3.0)
    assert "RNN trained, accuracy 86% (ana)" in book.loc[sid, "override_note"]
    canvas = pd.read_csv(results / "canvas_grades.csv", dtype=str)
    assert float(canvas[canvas["SIS User ID"] == sid].iloc[0, -1]) == pytest.approx(64.2)
    gradescope = json.loads((results / "gradescope" / "a002-partial" / "results.json").read_text())
    assert gradescope["score"] == pytest.approx(64.2)
    assert "Comment from your instructor: Save the model under the template's name next time." in gradescope["output"]
    pages = {p.stem: p.read_text() for p in write_feedback(results, results / "feedback", assignment)}
    assert "Comments from your instructor" in pages["a002-partial"]
    assert "Save the model under the template&#39;s name next time." in pages["a002-partial"]
    assert "Adjusted by your instructor: q4: 3 -&gt; 6 (RNN trained, accuracy 86% (ana))" in pages["a002-partial"]
    assert "Comments from your instructor" not in pages["a001-complete"]
    assert "3 decisions on" in pages["index"]


def test_the_instructor_page_counts_one_decision_as_one(results, assignment):
    decide(results, "pair~a001-complete~a004-late", "clear", reason="shared template code only", who="ana")
    pages = {p.stem: p.read_text() for p in write_feedback(results, results / "feedback", assignment)}
    assert "1 decision on " in pages["index"]


def test_a_regraded_result_waits_for_a_second_look_and_an_unchanged_one_keeps_its_decision(results, assignment):
    decide(results, NEEDS_REVIEW, "score", score=3.0, reason="RNN trained")
    decide(results, "a002-partial~integrity~cnn~not_trained_on_test", "score", score=5.0, reason="honest split")
    regraded = fixture_result("a002-partial")
    regraded["grader"]["regraded_at"] = "2026-12-05T10:00:00"  # a regrade that moved only the CNN's check
    next(c for q in regraded["questions"] for c in q["checks"] if c["name"] == "cnn_accuracy")["score"] = 0.0
    write(results, "a002-partial", regraded, assignment)
    review = adjustments(results, loaded(results))
    assert [d.item for d in review.second_look] == ["a002-partial~integrity~cnn~not_trained_on_test"]
    assert review.overrides[["question", "score"]].values.tolist() == [["q4", 6.0]]


def test_an_item_shows_the_model_summary_how_it_was_fed_and_trained(results, assignment):
    """Beside the measured accuracy, the model as the grader read it: how it was fed and how it trained."""
    from autograder.output.reading import fed_description
    from autograder.output.store import open_results
    from autograder.output.workbench.app import Session, Workbench, _env

    workbench, ta = Workbench(open_results(results), assignment, "token", "ana"), Session(csrf="x", name="ana")
    page = _env.get_template("item.html.j2").render(page=workbench.item_page(NEEDS_REVIEW, {}, ta), session=ta,
                                                    title="t")
    model = fixture_result("a002-partial")["models"]["simple_rnn"]
    summary = page.split('class="models"')[1].split("</table>")[0]
    assert f"fed {fed_description('simple_rnn', model['fed'])}" in summary
    training = model["training"]
    assert f"{training['fit_calls']} fit call(s), {training['training_steps']} training steps" in summary


def test_overrides_csv_imports_into_the_store_and_exports_from_it(results, assignment, tmp_path):
    sid = fixture_result("a004-late")["submission"]["student_id"]
    (tmp_path / "o.csv").write_text(f"student_id,question,score,reason\n{sid},q2,18,re-run on the TA's machine\n")
    assert main(["review", str(results), "--import-overrides", str(tmp_path / "o.csv"), "--name", "ana"]) == 0
    assert main(["review", str(results), "--import-overrides", str(tmp_path / "o.csv"), "--name", "ana"]) == 0
    assert len(DecisionStore(results).history("a004-late~override~q2")) == 1  # the same file twice: one change
    assert main(["review", str(results), "--export-overrides", str(tmp_path / "out.csv")]) == 0
    exported = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert exported.values.tolist() == [[sid, "q2", "18.0", "re-run on the TA's machine (ana)"]]
    (tmp_path / "bad.csv").write_text(f"student_id,question,score,reason\n{sid},q2,99,too much\n")
    assert main(["review", str(results), "--import-overrides", str(tmp_path / "bad.csv")]) == 2
    write_gradebook(results, results / "gradebook.csv", assignment)
    assert pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id").loc[sid, "q2"] == 18


def test_export_overrides_onto_a_folder_or_under_a_file_is_one_line_and_writes_nothing(results, tmp_path, capsys):
    from test_ta_outputs import one_line_refusal

    decide(results, NEEDS_REVIEW, "score", score=3.0, reason="RNN trained")
    blocker = tmp_path / "taken.csv"
    blocker.write_text("someone's file\n")
    for out, words in ((blocker / "o.csv", (str(blocker), "not a folder")), (tmp_path, (str(tmp_path), "is a folder"))):
        code = main(["review", str(results), "--export-overrides", str(out)])
        one_line_refusal(code, capsys.readouterr().err, *words)
    assert blocker.read_text() == "someone's file\n" and not list(tmp_path.glob("*.csv.*"))


def test_an_overrides_file_that_contradicts_a_decision_is_refused(results, assignment, tmp_path):
    decide(results, NEEDS_REVIEW, "score", score=3.0, reason="RNN trained")
    sid = fixture_result("a002-partial")["submission"]["student_id"]
    (tmp_path / "o.csv").write_text(f"student_id,question,score,reason\n{sid},q4,7,by hand\n")
    assert main(["gradebook", str(results), "--overrides", str(tmp_path / "o.csv")]) == 2
    assert not (results / "gradebook.csv").exists()


def test_show_lists_the_decisions_on_a_result(results, repo, capsys):
    decide(results, NEEDS_REVIEW, "score", score=3.0, reason="RNN trained", who="ana")
    decide(results, "pair~a001-complete~a004-late", "refer", reason="same odd helper function", who="bo")
    assert main(["show", str(results), "A002", "--assignment", str(repo / "assignments/mnist")]) == 0
    assert f"review: {NEEDS_REVIEW}: score 3 by ana" in capsys.readouterr().out
    assert main(["show", str(results), "A004", "--assignment", str(repo / "assignments/mnist")]) == 0
    assert "review: pair~a001-complete~a004-late: refer by bo" in capsys.readouterr().out


def test_review_refuses_a_port_in_use_with_one_line(results, repo, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        code = main(["review", str(results), "--port", str(busy.getsockname()[1]),
                     "--assignment", str(repo / "assignments/mnist")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "choose another --port" in err


def test_a_decision_follows_its_submission_whatever_id_the_roster_gives(tmp_path, assignment):
    """A Canvas batch graded without a roster carries Canvas ids as student ids; on the roster, Bob's SIS id is
    Alice's Canvas id. A decision on Alice's result changes Alice's grade, never Bob's."""
    results = copy_results(tmp_path / "RESULTS", assignment, [])
    for key, canvas_id in (("a002-partial", "5001"), ("a001-complete", "5002")):
        result = fixture_result(key)
        result["submission"].update(student_id=canvas_id, canvas_id=canvas_id)
        write(results, key, result, assignment)
    decide(results, NEEDS_REVIEW, "score", score=4.0, reason="the RNN is there, 86%")
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,name,canvas_id\nA1,Alice,5001\n5001,Bob,5002\n")
    assert main(["gradebook", str(results), "--assignment", str(assignment.root), "--roster", str(roster)]) == 0
    book = pd.read_csv(results / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    alice, bob = fixture_result("a002-partial"), fixture_result("a001-complete")
    graded_q4 = next(q["score"] for q in alice["questions"] if q["id"] == "q4")
    check = next(c for q in alice["questions"] for c in q["checks"] if c["name"] == "simple_rnn_accuracy")
    assert book.loc["A1", "q4"] == pytest.approx(graded_q4 + 4.0 - check["score"])
    assert "86%" in book.loc["A1", "override_note"]
    assert book.loc["5001", "total"] == pytest.approx(bob["score"]) and pd.isna(book.loc["5001", "override_note"])


def test_the_intake_decisions_are_review_items_accepted_or_referred_with_no_score_change(results, assignment,
                                                                                         tmp_path):
    """batch.json's intake decisions (Grace's notebook picked among two; a file no roster student owns) are in
    the queue with their evidence; accept/refer with a note, never a score, and every output is unchanged."""
    from autograder.output.store import open_results
    from autograder.output.workbench.app import Session, Workbench, _env
    from test_ta_outputs import write_intake_record

    write_intake_record(tmp_path, results, assignment)
    before = adjustments(results, loaded(results)).overrides
    queue = [i for i in build_queue(loaded(results), load_pairs(results), read_decisions(results))
             if i.kind == "intake_choice"]
    picked, unmapped = sorted(queue, key=lambda i: i.student_id)
    assert picked.id == "intake~A002~hoppergrace_555_100_mnist_homework.ipynb" and picked.key == "a002-partial"
    assert dict(picked.intake)["ignored"] == "hoppergrace_555_200_scratch.ipynb"
    assert "kept the one named like the template" in dict(picked.intake)["why"] == picked.why
    assert unmapped.student_id == "not mapped" and unmapped.key == "" and "not on the roster" in unmapped.why

    workbench, ta = Workbench(open_results(results), assignment, "token", "ana"), Session(csrf="x", name="ana")
    with pytest.raises(DecisionError, match="takes accept / refer"):
        workbench.decide(picked.id, {"action": "score", "check": "mlp_accuracy", "score": "0"}, ta)
    with pytest.raises(DecisionError, match="needs a reason"):
        workbench.decide(unmapped.id, {"action": "refer", "reason": " "}, ta)
    workbench.decide(picked.id, {"action": "accept", "reason": "scratch file is empty"}, ta)
    referred = workbench.decide(unmapped.id, {"action": "refer", "reason": "ask who Mallory is"}, ta)
    assert referred.result_key == "" and referred.score is None and referred.student_id == "not mapped"

    review = adjustments(results, loaded(results))
    assert review.second_look == [] and review.decided == 2 and review.overrides.equals(before)
    page = _env.get_template("item.html.j2").render(page=workbench.item_page(unmapped.id, {}, ta), session=ta,
                                                    title="t")
    assert "What intake decided" in page and "No result for this file yet" in page and 'id="refer"' in page
    assert "mallory&lt;script&gt;_777" in page and "<script>" not in page and 'id="set-score"' not in page
    page = _env.get_template("item.html.j2").render(page=workbench.item_page(picked.id, {}, ta), session=ta,
                                                    title="t")
    assert "hoppergrace_555_200_scratch.ipynb" in page and "Grace Hopper" in page and "ask who" not in page
