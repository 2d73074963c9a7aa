"""The seccomp filter of every sandbox: system calls a notebook never needs fail with EPERM.

Defence in depth under the namespaces, the unprivileged uid and ``no_new_privs``: each refused call is
one that hands a process powers the rest of the sandbox assumes it lacks, or a favourite way into the
kernel. Built with libseccomp (through ``pyseccomp``, a ctypes binding with libseccomp's own Python
API) and handed to bubblewrap as a compiled BPF program (``bwrap --seccomp FD``), which loads it right
before it runs the sandboxed command, so the sandbox's own set-up is not affected. SECURITY.md lists
the calls and why.
"""
from __future__ import annotations

import errno
import functools
import os

#: Refused system calls, each with why a notebook must not have it.
DENIED: dict[str, str] = {
    # New namespaces: a user namespace makes the notebook root inside it (mounts, a tmpfs outside every
    # limit, capabilities against namespaced kernel code); clone() with the same flags is refused below.
    "unshare": "new namespaces (a user namespace makes the notebook root inside it)",
    "setns": "joining other namespaces",
    # Mounts: the sandbox's file system view is bubblewrap's, fixed before the notebook starts.
    "mount": "mounting file systems", "umount2": "unmounting the sandbox's own mounts",
    "pivot_root": "changing the root", "fsopen": "mounting (new mount API)", "fsconfig": "mounting (new mount API)",
    "fsmount": "mounting (new mount API)", "move_mount": "mounting (new mount API)",
    "open_tree": "mounting (new mount API)", "fspick": "mounting (new mount API)",
    "mount_setattr": "changing mount flags",
    # Other processes: ptrace reads and writes another process's memory and registers.
    "ptrace": "tracing processes", "process_vm_readv": "reading another process's memory",
    "process_vm_writev": "writing another process's memory",
    # Kernel keyrings are not namespaced: keys outlive the job and are shared by every process of the uid.
    "keyctl": "kernel keyrings", "add_key": "kernel keyrings", "request_key": "kernel keyrings",
    # Rarely needed, often the first step of kernel exploits.
    "bpf": "loading BPF programs", "perf_event_open": "performance counters",
    "userfaultfd": "page-fault handling in user space",
    # Never without capabilities, refused anyway should a capability ever be reachable.
    "kexec_load": "loading a new kernel", "kexec_file_load": "loading a new kernel",
    "init_module": "kernel modules", "finit_module": "kernel modules", "delete_module": "kernel modules",
    "reboot": "rebooting", "swapon": "swap", "swapoff": "swap", "acct": "process accounting",
    "quotactl": "disk quotas", "syslog": "the kernel log",
}

#: clone() flags that make new namespaces; clone() itself is needed for threads and fork.
NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                   "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}


class FilterUnavailable(RuntimeError):
    """libseccomp or its binding is missing; the message names the fix."""


@functools.lru_cache(maxsize=1)
def bpf_program() -> bytes:
    """The filter as a classic BPF program for this machine's architecture (other architectures' calls are killed)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as exc:  # RuntimeError: the binding found no libseccomp
        raise FilterUnavailable(f"{exc}: install libseccomp (`apt-get install libseccomp2`) and the project's "
                                "Python dependencies (`make setup`)") from exc
    refuse = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)  # a binary tree, not a list: every system call passes it
    for name in DENIED:
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) >= 0:  # an older libseccomp may not know it
            rules.add_rule(refuse, name)
    for flag in NAMESPACE_FLAGS.values():
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone().
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # fallocate reserves gigabytes of disk in a microsecond, faster than any watchdog polls the directories
    # the sandbox writes back; "not supported" makes libc's posix_fallocate write instead, at disk speed.
    rules.add_rule(seccomp.ERRNO(errno.EOPNOTSUPP), "fallocate")
    fd = os.memfd_create("agx-seccomp-export")
    try:
        with os.fdopen(fd, "w+b", closefd=False) as fh:
            rules.export_bpf(fh)
            fh.seek(0)
            return fh.read()
    finally:
        os.close(fd)


def program_fd() -> int:
    """A fresh file descriptor holding the program, for ``bwrap --seccomp FD`` (bwrap reads it once)."""
    fd = os.memfd_create("agx-seccomp")
    os.write(fd, bpf_program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
