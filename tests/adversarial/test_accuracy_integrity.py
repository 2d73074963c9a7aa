"""Issue 12's attack classes are each a case of the adversarial suite (graded in test_adversarial.py)."""
from __future__ import annotations

from cases import ACCURACY_INTEGRITY, CASES, MODEL_QUESTIONS

ACCURACY_CHECKS = {f"{arch}_accuracy" for arch in ("mlp", "cnn", "simple_rnn", "lstm", "gru")}


def test_every_attack_class_of_issue_12_is_a_case():
    names = {case.name for case in ACCURACY_INTEGRITY}
    assert {"lookup_of_the_test_set", "lookup_relabelled_by_a_1x1_conv", "lookup_with_dead_recurrent_branches",
            "cnn_with_dead_recurrent_branches", "fit_on_the_test_set", "evasive_claims_table",
            "numpy_patched_before_export"} <= names
    assert all(case in CASES for case in ACCURACY_INTEGRITY)


def test_no_attack_may_keep_an_accuracy_point():
    """Every model question of a lookup or dead branch must be zero; elsewhere the attacked check is capped at 0."""
    for case in ACCURACY_INTEGRITY:
        zero, capped = set(case.expect.zero), {name for name, most in case.expect.checks.items() if most == 0}
        if "lookup" in case.name or "dead_recurrent" in case.name:
            assert set(MODEL_QUESTIONS) <= zero, case.name
        else:
            assert capped & (ACCURACY_CHECKS | {"report_claims", "preprocessing"}), case.name
