"""Run ``python -m MODULE ARGS`` in this process, then write its peak resident memory (MB) to OUT.

    python bench/peak_rss.py OUT -m MODULE [ARGS...]

ru_maxrss of RUSAGE_SELF counts this process only, not the kernels and sandboxes it starts, so the
grader's own footprint is measured apart from the student's.
"""
import resource
import runpy
import sys


def main() -> int:
    out, flag, module, *args = sys.argv[1:]
    assert flag == "-m", "usage: peak_rss.py OUT -m MODULE [ARGS...]"
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with open(out, "w") as fh:
            fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return code


if __name__ == "__main__":
    sys.exit(main())
