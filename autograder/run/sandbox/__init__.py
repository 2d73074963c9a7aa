"""The sandbox untrusted code runs in: bubblewrap, an unprivileged uid, hard limits, a watchdog.

One module per part, each imported from where it is defined (this package re-exports nothing):
``spec`` (what a sandboxed process sees and its limits), ``bwrap`` (the command line), ``containment``
(its cgroup and seccomp filter: ``cgroup``, ``syscall_filter``), ``process_tree`` (its processes, disk
and tmpfs, and killing them), ``watchdog`` (its CPU clock and the kill on a breach), ``process`` (one
sandboxed process started, released and waited for).
"""
