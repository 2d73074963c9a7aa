"""Sandboxed autograder for deep-learning (Keras on MNIST) homework notebooks.

Pipeline, one module per stage: intake -> sandbox/execute (Phase A, untrusted) -> artifacts
(plain-data export) -> checks and hidden tests (Phase B, trusted) -> scoring -> reports.
"""
__version__ = "0.1.0"
