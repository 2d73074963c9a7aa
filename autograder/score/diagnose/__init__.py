"""Diagnoses: why a notebook failed in the grader, in a student's words, computed while it is scored.

``table`` (+ ``diagnoses.toml``) holds the known failures, ``matcher`` gives each failed cell its first
matching pattern (:func:`autograder.score.diagnose.matcher.diagnose`), ``knock_ons`` groups each failure
that follows from an earlier one under its root cause. The student's code is read with
:mod:`autograder.score.notebook_code`.

Diagnoses are advice only: they give or take no points (the package is in neither key), and nothing
here re-runs or patches student code. Every string returned is plain text (ANSI codes and control
characters removed, student-controlled parts shortened); HTML escaping happens when the feedback page is
rendered.
"""
