# Set-up is part of every target: a fresh machine needs only `make demo` or `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTHON ?= python3

# Offline MNIST: use the shared copy when it sits beside the checkout (CI and dev machines).
SHARED_MNIST := $(abspath ../shared/data/mnist)
ifneq ($(wildcard $(SHARED_MNIST)/mnist.npz),)
export AUTOGRADER_MNIST_DIR ?= $(SHARED_MNIST)
endif
# Two cores: keep TensorFlow from oversubscribing them and quiet its start-up chatter.
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Two workers: one sandboxed notebook leaves part of the second core idle (BENCHMARKS.md figure 5: two workers
# grade a batch 1.3-1.55x faster than one); modules that share an expensive fixture stay on one worker
# (tests/conftest.py). Work is handed out in collection order, where the conftest puts the longest modules
# first, so that both workers end together. The slowest tests are listed at the end, to keep the suite's time
# in view.
PYTEST_ARGS ?= -n 2 --dist loadgroup --no-loadscope-reorder --durations=25
BENCH_ARGS ?=
LANE ?= test

.PHONY: setup system-deps test test-full refresh-evidence demo bench bench-suite calibrate assign clean

setup: system-deps $(STAMP)

# bubblewrap is the sandbox, libseccomp builds its system-call filter; chromium renders the feedback
# pages in a test.
system-deps:
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	ldconfig -p | grep -q 'libseccomp\.so\.2 ' || missing="$$missing libseccomp2"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v setpriv >/dev/null || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "please install:$$missing (sudo apt-get install$$missing)"; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The variant corpus's notebooks are executed once and their evidence stored with the key it was produced
# under (tests/variant_evidence.py): `make test` re-scores the stored evidence whose key is current and
# executes the rest; `make test-full` executes every notebook; `make refresh-evidence` executes what is not
# current and stores it (commit tests/fixtures/variants/evidence/ with the change that made it stale; the other
# end-to-end fixtures that only feed scoring are kept the same way in tests/fixtures/evidence/).
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-full: setup
	AUTOGRADER_FULL=1 $(PY) -m pytest $(PYTEST_ARGS)

refresh-evidence: setup
	$(PY) -m tests.variant_evidence refresh

demo: setup
	$(PY) -m autograder demo

bench: setup
	$(PY) bench/run.py $(BENCH_ARGS)

# The suite's own time: `make test` (or LANE=test-full) in a CPU-accounting cgroup of its own; wall and CPU
# seconds and the load appended to bench/results/suite_lanes.csv (BENCHMARKS.md, "The suite's two lanes").
bench-suite: setup
	$(PY) bench/suite_lanes.py --lane $(LANE)

calibrate: setup
	$(PY) -m autograder calibrate --assignment assignments/mnist

assign: setup
	$(PY) -m autograder assign assignments/mnist

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo-results
