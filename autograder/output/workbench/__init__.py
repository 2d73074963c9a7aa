"""The TA review workbench (``autograder review``): the queue of what a person must decide, each item's
evidence, and the decisions, stored in RESULTS and read by every output.

``queue`` builds the items from the results and the similarity pairs; ``decisions`` is the SQLite store
(audit trail, conflict rule, comment bank) and turns accepted decisions into override rows; ``app`` is
the local web app.
"""
