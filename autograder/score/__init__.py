"""Phase B, trusted: reads the plain data Phase A exported (``artifacts``) and decides every point (hidden tests,
architecture, accuracy, integrity, report). Never runs or unpickles student code.
"""
