"""The review workbench served for real (uvicorn on 127.0.0.1, a free port): token, CSRF and headers over
HTTP, then headless Chromium driving it as a TA does, and a hostile report shown as inert text."""
from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import nbformat
import pandas as pd
import pytest

from autograder.cli import build_parser, main
from autograder.output.store import open_results
from autograder.output.workbench.app import open_socket, server
from autograder.output.workbench.decisions import DecisionStore
from browser import Browser
from result_fixtures import copy_results, fixture_result, write
from test_feedback import confusion_matrix, save_evidence_archive
from test_workbench import NEEDS_REVIEW, write_pairs

INTEGRITY = "a002-partial~integrity~cnn~not_trained_on_test"
PAIR = "pair~a001-complete~a004-late"
CLAIMS = "a002-partial~check~report_claims"
HOSTILE = ["<script>window.pwned = 'script'</script>",
           '<img src="x" onerror="window.pwned = \'onerror\'">',
           "A" * (5 * 1024 * 1024),  # a 5 MB cell
           "## Results\nOur SimpleRNN reached 91.5% on the test set."]


def hostile_results(root, assignment):
    """The fixture results, a similarity pair, a stored confusion matrix, and for a002 a report and a
    code cell full of markup, written as the grader writes them (result JSON, nbformat, evidence)."""
    copy_results(root, assignment)
    write_pairs(root, ("a001-complete", "a004-late"))
    save_evidence_archive(root, "a002-partial", [confusion_matrix()])
    result = fixture_result("a002-partial")
    result["execution"]["cells"][3]["source"] = "rnn_model.fit(x, y)  # <script>window.pwned = 'cell'</script>"
    write(root, "a002-partial", result, assignment)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text) for text in HOSTILE])
    nbformat.write(notebook, root / "artifacts" / "a002-partial" / "executed.ipynb")
    return root


@pytest.fixture
def served(tmp_path, assignment):
    root = hostile_results(tmp_path / "RESULTS", assignment)
    sock = open_socket("127.0.0.1", 0)
    web, url = server(open_results(root), assignment, sock, "ana")
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not web.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield root, url
    web.should_exit = True
    thread.join(timeout=30)


def client():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def status(opener, url, data=None):
    try:
        with opener.open(url, data=data) as answer:
            return answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


def test_token_csrf_headers_and_nothing_but_its_own_files(served):
    root, url = served
    base = url.split("?")[0]
    assert status(client(), base)[0] == 403  # no token
    assert status(client(), base + "?token=wrong")[0] == 403
    assert status(client(), base + f"item/{NEEDS_REVIEW}")[0] == 403
    ta = client()
    code, page, headers = status(ta, url)
    assert code == 200 and "Review queue" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"action": "accept", "base_version": "0"}
    for data in (form, {**form, "csrf": "forged"}):  # no token, a wrong token: refused, nothing stored
        assert status(ta, base + f"item/{NEEDS_REVIEW}", urllib.parse.urlencode(data).encode())[0] == 403
    assert DecisionStore(root).all() == {}
    assert status(ta, base + f"item/{NEEDS_REVIEW}", urllib.parse.urlencode({**form, "csrf": csrf}).encode())[0] == 200
    assert DecisionStore(root).get(NEEDS_REVIEW).who == "ana"
    for path in ("static/workbench.js", "static/workbench.css"):
        assert status(ta, base + path)[0] == 200
    for path in ("static/..%2Fapp.py", "static/app.py", "results/a001-complete.json", "static/%2e%2e/%2e%2e/results"):
        assert status(ta, base + path)[0] == 404, path
    assert build_parser(["review", "R"]).parse_args(["review", "R"]).host == "127.0.0.1"


def test_a_second_ta_sees_the_first_decision_and_cannot_overwrite_it_silently(served):
    root, url = served
    base, item = url.split("?")[0], f"{url.split('?')[0]}item/{INTEGRITY}"
    pages = {}
    for name in ("ana", "bo"):
        pages[name] = opener = client()
        csrf = re.search(r'name="csrf" value="([^"]+)"', status(opener, url)[1]).group(1)
        status(opener, base + "name", urllib.parse.urlencode({"csrf": csrf, "name": name}).encode())
        pages[name] = (opener, csrf, re.search(r'name="base_version" value="(\d+)"', status(opener, item)[1]).group(1))
    opener, csrf, version = pages["ana"]
    status(opener, item, urllib.parse.urlencode({"csrf": csrf, "base_version": version, "action": "accept"}).encode())
    opener, csrf, version = pages["bo"]  # bo's page was loaded before ana decided
    form = {"csrf": csrf, "base_version": version, "action": "score", "check": "cnn_accuracy", "score": "0",
            "reason": "trained on the test set"}
    code, page, _ = status(opener, item, urllib.parse.urlencode(form).encode())
    assert code == 409 and "already decided by ana" in page
    assert DecisionStore(root).get(INTEGRITY).action == "accept"
    now_seen = re.search(r'name="base_version" value="(\d+)"', page).group(1)  # the page shows ana's decision
    code, _, _ = status(opener, item, urllib.parse.urlencode({**form, "base_version": now_seen}).encode())
    assert code == 200 and DecisionStore(root).get(INTEGRITY).who == "bo"
    assert [h["who"] for h in DecisionStore(root).history(INTEGRITY)] == ["ana", "bo"]


@pytest.mark.slow
def test_a_ta_decides_in_chromium_and_every_output_shows_exactly_that(served, tmp_path, repo):
    root, url = served
    base = url.split("?")[0]
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(url)
        assert browser.wait_for("document.getElementById('progress-text')?.textContent") == "0 of 6 decided"
        # j and k step through the queue; a accepts.
        browser.open(base + f"item/{INTEGRITY}")
        browser.wait_for("!!document.getElementById('accept')")
        browser.key("k")
        browser.wait_for(f"location.pathname.endsWith({json.dumps(NEEDS_REVIEW)})")
        browser.wait_for("!!document.getElementById('accept')")
        browser.key("j")
        browser.wait_for(f"location.pathname.endsWith({json.dumps(INTEGRITY)})")
        browser.wait_for("!!document.getElementById('accept')")
        browser.key("a")
        browser.wait_for(f"!location.pathname.endsWith({json.dumps(INTEGRITY)})")
        # Override the check the grader could not judge, with a reason and a comment.
        browser.open(base + f"item/{NEEDS_REVIEW}")
        browser.wait_for("!!document.getElementById('score')")
        browser.key("e")
        assert browser.evaluate("document.activeElement.id") == "score"
        browser.send("Input.insertText", text="3")
        browser.evaluate("document.getElementById('reason').focus()")
        browser.send("Input.insertText", text="RNN trained; 86% measured by hand")
        browser.evaluate("document.activeElement.blur()")
        browser.key("c")
        browser.send("Input.insertText", text="Keep the template's model names.")
        browser.evaluate("document.querySelector('input[name=save_comment]').checked = true;"
                         "document.getElementById('set-score').click()")
        browser.wait_for(f"!location.pathname.endsWith({json.dumps(NEEDS_REVIEW)})")
        # Clear the similarity pair with a note.
        browser.open(base + f"item/{PAIR}")
        browser.wait_for("!!document.getElementById('clear')")
        browser.evaluate("document.getElementById('reason').value = 'only the template code is shared';"
                         "document.getElementById('clear').click()")
        browser.wait_for("!!document.getElementById('progress-text')")
        assert browser.evaluate("document.getElementById('progress-text').textContent") == "3 of 6 decided"
        browser.open(base + f"item/{CLAIMS}")  # the comment bank now offers the comment
        assert browser.wait_for("[...document.querySelectorAll('#bank option')].map(o => o.value).join('|')") == \
            "|Keep the template's model names."
    finally:
        browser.close()

    decisions = DecisionStore(root).all()
    assert {(k, d.action, d.score, d.who) for k, d in decisions.items()} == {
        (INTEGRITY, "accept", None, "ana"), (NEEDS_REVIEW, "score", 3.0, "ana"), (PAIR, "clear", None, "ana")}
    assert main(["gradebook", str(root), "--assignment", str(repo / "assignments/mnist")]) == 0
    assert main(["feedback", str(root), "--assignment", str(repo / "assignments/mnist")]) == 0
    sid = fixture_result("a002-partial")["submission"]["student_id"]
    book = pd.read_csv(root / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    graded = {q["id"]: q["score"] for q in fixture_result("a002-partial")["questions"]}
    assert book.loc[sid, "q4"] == graded["q4"] + 3.0 and book.loc[sid, "q3"] == graded["q3"]  # accepted: unchanged
    assert book.loc[sid, "override_note"] == "q4: 3 -> 6 (RNN trained; 86% measured by hand (ana))"
    others = book.drop(index=sid)
    assert (others["override_note"].fillna("") == "").all()
    canvas = pd.read_csv(root / "canvas_grades.csv", dtype=str)
    assert float(canvas.loc[canvas["SIS User ID"] == sid].iloc[0, -1]) == pytest.approx(61.2 + 3.0)
    page = (root / "feedback" / "a002-partial.html").read_text()
    assert "Keep the template&#39;s model names." in page and "RNN trained; 86% measured by hand" in page
    assert "3 decisions on 6 items" in (root / "feedback" / "index.html").read_text()


@pytest.mark.slow
def test_a_hostile_report_is_inert_capped_text_in_chromium(served, tmp_path):
    root, url = served
    base = url.split("?")[0]
    ta = client()
    status(ta, url)
    code, html, _ = status(ta, base + f"item/{CLAIMS}")
    assert code == 200 and len(html) < 200_000  # the 5 MB cell is capped
    assert "<script>window" not in html and "<img src=\"x\"" not in html
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(url)
        browser.open(base + f"item/{CLAIMS}")
        reports = browser.wait_for("[...document.querySelectorAll('pre.report')].map(p => p.textContent)")
        assert reports[0] == HOSTILE[0] and reports[1] == HOSTILE[1]
        assert HOSTILE[2][:1000] in reports[2] and len(reports[2]) < 5000
        claims = browser.evaluate("document.querySelector('.claims li').textContent")
        assert claims.startswith("91.5% ↔ SimpleRNN 86.")  # the claim beside the nearest measured accuracy
        assert browser.evaluate("typeof window.pwned") == "undefined"
        assert browser.evaluate("[...document.scripts].map(s => s.getAttribute('src'))") == ["/static/workbench.js"]
        assert browser.evaluate("[...document.images].every(i => i.src.startsWith('data:image/png'))")
        assert browser.evaluate("document.images.length") == 1  # the confusion matrix, drawn by the grader
        browser.open(base + f"item/{NEEDS_REVIEW}")
        cell = browser.wait_for("document.querySelector('.cell pre')?.textContent")
        assert "<script>window.pwned = 'cell'</script>" in cell
        assert browser.evaluate("typeof window.pwned") == "undefined"
        assert browser.evaluate("document.querySelector('.cell pre .marked').textContent").startswith("rnn_model.fit")
    finally:
        browser.close()


def test_rubric_mode_scores_the_report_by_section_from_the_automatic_scores(served, repo):
    root, url = served
    base = url.split("?")[0]
    ta = client()
    status(ta, url)
    code, page, _ = status(ta, base + "rubric/a002-partial")
    assert code == 200
    assert re.search(r"<strong>91.5%</strong> &harr; SimpleRNN 86.\d\d% \((secret eval|public test)\)", page)
    assert 'name="score.report_table"' in page and 'value="4.2"' in page  # starts from the automatic score
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf, **{f"score.{c}": v for c, v in
                             [("report_sections", "10"), ("report_table", "6"), ("report_insights", "0"),
                              ("report_claims", "0")]},
            **{f"base.{c}": "0" for c in ("report_sections", "report_table", "report_insights", "report_claims")}}
    code, page, _ = status(ta, base + "rubric/a002-partial", urllib.parse.urlencode(form).encode())
    assert code == 400 and "say why" in page and DecisionStore(root).all() == {}  # a moved score needs a reason
    form["reason.report_table"] = "the LSTM and GRU rows are in a second table"
    assert status(ta, base + "rubric/a002-partial", urllib.parse.urlencode(form).encode())[0] == 200
    assert [(d.check, d.score) for d in DecisionStore(root).all().values()] == [("report_table", 6.0)]
    assert main(["gradebook", str(root), "--assignment", str(repo / "assignments/mnist")]) == 0
    book = pd.read_csv(root / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    graded = {q["id"]: q["score"] for q in fixture_result("a002-partial")["questions"]}
    assert book.loc[fixture_result("a002-partial")["submission"]["student_id"], "q8"] == pytest.approx(graded["q8"] + 1.8)


def test_the_queue_filters_by_kind_question_and_state_with_counts(served):
    root, url = served
    base = url.split("?")[0]
    ta = client()
    status(ta, url)

    def listed(query: str) -> list[str]:
        return re.findall(r'data-item="([^"]+)"', status(ta, f"{base}?{query}")[1])

    assert listed("kind=similarity") == [PAIR]
    assert listed("question=q4") == [NEEDS_REVIEW]
    assert listed("kind=claims") == ["a001-complete~check~report_claims", CLAIMS]
    csrf = re.search(r'name="csrf" value="([^"]+)"', status(ta, base)[1]).group(1)
    status(ta, f"{base}item/{NEEDS_REVIEW}", urllib.parse.urlencode(
        {"csrf": csrf, "base_version": "0", "action": "accept"}).encode())
    assert listed("state=decided") == [NEEDS_REVIEW] and len(listed("state=open")) == 5
    page = status(ta, base)[1]
    assert "1 of 6 decided" in page and "claims (2)" in page and "open (5)" in page


def test_the_queue_says_when_results_need_a_regrade_first(served, assignment):
    root, url = served
    stale = json.loads((root / "results" / "a004-late.json").read_text())
    stale["assignment"]["bundle_sha256"] = "an older bundle"  # as a result graded before a rubric change reads
    (root / "results" / "a004-late.json").write_text(json.dumps(stale))
    page = status(client(), url)[1]
    assert re.search(r'id="stale">1 result\(s\) are not current for this assignment', page)


def test_a_decision_whose_item_a_regrade_removed_is_listed_and_not_applied(served, assignment, repo):
    root, url = served
    ta = client()
    csrf = re.search(r'name="csrf" value="([^"]+)"', status(ta, url)[1]).group(1)
    base = url.split("?")[0]
    form = {"csrf": csrf, "base_version": "0", "action": "score", "check": "simple_rnn_accuracy", "score": "4",
            "reason": "trained, 86%"}
    status(ta, f"{base}item/{NEEDS_REVIEW}", urllib.parse.urlencode(form).encode())
    regraded = json.loads((root / "results" / "a002-partial.json").read_text())
    regraded["review"] = []  # a grader fix: the check no longer needs a person
    write(root, "a002-partial", regraded, assignment)
    page = status(ta, base)[1]
    outside = page.split("outside the queue")[1]
    assert NEEDS_REVIEW in outside and "score 4 by ana" in outside
    assert main(["gradebook", str(root), "--assignment", str(repo / "assignments/mnist")]) == 0
    book = pd.read_csv(root / "gradebook.csv", dtype={"student_id": str}).set_index("student_id")
    assert book.loc[fixture_result("a002-partial")["submission"]["student_id"], "q4"] == 3.0  # not applied
