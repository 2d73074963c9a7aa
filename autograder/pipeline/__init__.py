"""Orchestration: one notebook through Phase A then Phase B (``grade_one``), a batch of submissions in parallel,
resumable, with retries (``batch``).
"""
