"""What people read, built from stored results: the results store, gradebook and exports, feedback pages,
diagnoses, review lists, similarity, Gradescope packaging.
"""
