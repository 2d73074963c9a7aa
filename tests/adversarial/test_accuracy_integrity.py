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


#: What the forged part of an attack may still keep: patched numpy forges q1's probes, but the validation
#: split the grader's own fit hook saw passed to fit() is real evidence (1 of preprocessing's 10 points).
KEPT_BY_HONEST_EVIDENCE = {"preprocessing": 1.0}


def test_no_attack_may_keep_an_accuracy_point():
    """Every model question of a lookup or dead branch must be zero; elsewhere the attacked check is capped."""
    for case in ACCURACY_INTEGRITY:
        zero = set(case.expect.zero)
        capped = {name for name, most in case.expect.checks.items()
                  if most <= KEPT_BY_HONEST_EVIDENCE.get(name, 0.0)}
        if "lookup" in case.name or "dead_recurrent" in case.name:
            assert set(MODEL_QUESTIONS) <= zero, case.name
        else:
            assert capped & (ACCURACY_CHECKS | {"report_claims", "preprocessing"}), case.name
