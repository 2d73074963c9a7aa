"""Sandboxed autograder for deep-learning (Keras on MNIST) homework notebooks.

One sub-package per phase: intake -> run (Phase A: the sandbox, and ``run/inside`` beside student
code) -> score (Phase B, trusted: reads the plain-data export, decides points) -> output; ``pipeline``
chains them, ``author`` is the instructor's side, ``cli`` has one module per verb. See ARCHITECTURE.md.
"""
__version__ = "0.1.0"
