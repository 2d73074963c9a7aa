"""Phase A: the sandbox (bubblewrap, an unprivileged uid, limits, watchdogs) and the kernel that runs the
untrusted notebook. ``inside/`` is the code that runs next to student code; what comes back is plain data only
(manifest JSON, .npy read with allow_pickle=False, predictions).
"""
