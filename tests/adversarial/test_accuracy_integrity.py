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


def test_every_form_of_issue_24_is_a_case_flagged_by_its_rule_with_an_honest_twin():
    by_name = {case.name: case for case in CASES}
    forms = {"test_images_hidden_in_training": "no_test_images_trained_on",
             "test_images_by_train_on_batch": "no_test_images_trained_on",
             "test_images_in_a_tf_data_pipeline": "no_test_images_trained_on",
             "weights_brought_in_by_set_weights": "weights_from_this_notebook",
             "weights_brought_in_as_files": "weights_from_this_notebook"}
    for name, rule in forms.items():
        case = by_name[name]
        assert case in ACCURACY_INTEGRITY and set(case.expect.flagged.values()) == {rule}, name
        assert all(case.expect.checks[f"{arch}_accuracy"] == 0.0 for arch in case.expect.flagged), name
    twin = by_name["honest_test_validation_and_own_checkpoints"].expect
    assert set(twin.earned) == {"mlp_accuracy", "cnn_accuracy"} and set(twin.unflagged) == {"mlp", "cnn"}
