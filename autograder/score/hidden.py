"""Run an assignment's hidden tests on the trusted side, pytest-style.

Hidden tests are plain functions in ``<assignment>/hidden/*.py``; the config names them per question
with points. Each is called with the fixtures its parameters name (like pytest fixtures) and returns an
:class:`Outcome`; raising :class:`NotAssessed` marks the check as not assessed (0 points, with the
reason); raising :class:`NeedsReview` marks it ``needs_review`` (0 points until a person looks, with the
reason, and listed in the result's ``review``); any other exception is the test's own bug and is reported as a grader error for that check
only, never as the student's fault.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from typing import Any, Callable

from autograder.assignment import Assignment, AssignmentError
from autograder.score.checks import NeedsReview, NotAssessed, Outcome


def load_tests(assignment: Assignment) -> dict[str, Callable[..., Outcome]]:
    """Every public function of the hidden test modules, by name; each configured test must exist."""
    tests: dict[str, Callable[..., Outcome]] = {}
    for path in sorted(assignment.hidden_dir.glob("*.py")):
        module_name = f"_hidden_{assignment.name}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("_") and func.__module__ == module_name:
                if name in tests:
                    raise AssignmentError(f"hidden test {name!r} is defined twice ({path.name})")
                tests[name] = func
    for question in assignment.questions:
        for check in question.checks:
            if check.test not in tests:
                raise AssignmentError(f"questions {question.id}: hidden test {check.test!r} not found in "
                                      f"{assignment.hidden_dir}")
    return tests


def call_with_fixtures(test: Callable[..., Outcome], fixtures: dict[str, Any]) -> Outcome:
    params = inspect.signature(test).parameters
    # A parameter with a default may name a fixture this grader does not provide (a test written ahead).
    missing = [name for name, p in params.items() if name not in fixtures and p.default is inspect.Parameter.empty]
    if missing:
        raise AssignmentError(f"hidden test {test.__name__} asks for unknown fixtures {missing}; "
                              f"available: {sorted(fixtures)}")
    outcome = test(**{name: fixtures[name] for name in params if name in fixtures})
    if not isinstance(outcome, Outcome):
        raise AssignmentError(f"hidden test {test.__name__} returned {type(outcome).__name__}, not an Outcome")
    return outcome


def run_checks(assignment: Assignment, fixtures: dict[str, Any],
               tests: dict[str, Callable[..., Outcome]] | None = None) -> list[dict[str, Any]]:
    """Score every question; returns the result schema's ``questions`` list."""
    tests = tests if tests is not None else load_tests(assignment)
    questions = []
    for question in assignment.questions:
        checks = []
        for check in question.checks:
            try:
                outcome = call_with_fixtures(tests[check.test], fixtures)
                status, message, detail, fraction = outcome.status, outcome.message, outcome.detail, outcome.fraction
            except NotAssessed as exc:
                status, message, detail, fraction = "not_assessed", str(exc), "", 0.0
            except NeedsReview as exc:
                status, message, detail, fraction = "needs_review", str(exc), "", 0.0
            except AssignmentError:
                raise
            except Exception as exc:  # the hidden test's own bug: the student is not blamed
                status, fraction = "grader_error", 0.0
                message = "The grader could not run this check; your instructor will review it."
                detail = f"{type(exc).__name__}: {exc}"
            checks.append({"name": check.test, "score": round(check.points * fraction, 4),
                           "max_score": check.points, "passed": status == "passed", "status": status,
                           "message": message, "detail": detail})
        score = round(sum(c["score"] for c in checks), 4)
        statuses = {c["status"] for c in checks}
        status = ("passed" if statuses == {"passed"} else
                  "needs_review" if "needs_review" in statuses else
                  "not_assessed" if statuses == {"not_assessed"} else
                  "failed" if score == 0 else "partial")
        questions.append({"id": question.id, "title": question.title, "score": score,
                          "max_score": question.points, "status": status,
                          "message": " ".join(dict.fromkeys(c["message"] for c in checks if c["message"])),
                          "checks": checks})
    return questions


def review_list(questions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The checks a person must look at (needs_review, and the grader's own errors), as ``review`` entries
    ``{kind: "needs_review" | "grader_error", question, check, reason}``."""
    return [{"kind": c["status"], "question": q["id"], "check": c["name"],
             "reason": c["detail"] if c["status"] == "grader_error" else c["message"]}
            for q in questions for c in q["checks"] if c["status"] in ("needs_review", "grader_error")]
