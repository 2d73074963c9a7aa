"""What people read, built from stored results: the results store, gradebook and exports, feedback pages
(with the diagnoses and review lists scoring wrote), similarity, Gradescope packaging.
"""
