"""Static analysis of the written report: the notebook's markdown cells, parsed and never executed or rendered.

Pipeline: :func:`analysis.report_markdown` (markdown cell sources) -> :func:`analysis.analyze_report`
(:mod:`markdown` blocks, :mod:`sections`, :mod:`table` rows and :mod:`prose` claims, read with the report's
own :mod:`numbers` and the :mod:`~autograder.vocabulary` of architectures and accuracies, as the
:mod:`findings` dataclasses) -> :func:`claims.judge_claims` (each stated accuracy against the grader's
measurement, and the numbers the notebook itself printed, found by :mod:`autograder.intake.printed`) -> the
``check_*`` functions of :mod:`checks` (one :class:`~autograder.score.checks.Outcome` each). Each module's docstring states the decisions it makes.
"""

