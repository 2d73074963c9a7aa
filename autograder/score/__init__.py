"""Phase B, trusted: reads the plain data Phase A exported (``artifacts``) and decides every point (hidden tests,
architecture, accuracy, integrity, report), the review list (``lost_models``) and the diagnoses (``diagnose/``,
advice only). Never runs or unpickles student code.
"""
