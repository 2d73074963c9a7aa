"""The integrity rules (:data:`autograder.score.integrity.RULES`) as students and TAs read their names.

Read by the feedback pages and by the review workbench's queue and evidence; words only, so they stay out
of the scoring key.
"""
from __future__ import annotations

RULE_TITLES = {"trained": "Trained in the notebook", "weights_from_this_notebook": "Weights from its own training",
               "not_fit_on_test": "Not fit on the test images",
               "no_test_images_trained_on": "No test images among its training images",
               "not_trained_on_test": "Not trained on the test set",
               "generalises": "Recognises new digits", "does_the_work": "Its named layers do the work",
               "distinct": "A model of its own"}
