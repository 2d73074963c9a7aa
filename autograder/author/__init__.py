"""The instructor's side, before and between terms: the student template and hidden bundle (``assign``),
calibration of the accuracy thresholds, a new term's private seed.
"""
