"""Code that runs INSIDE the sandbox, next to untrusted student code.

Nothing here is trusted: the student's code shares the process (export) or the model file (predict)
and can subvert it. It therefore only produces plain data (JSON and numeric ``.npy``) that the
trusted side validates. It must not import ``autograder``: that package is not mounted in the sandbox.
"""
