"""Run once when the sandboxed kernel starts (IPKernelApp.exec_lines): seeds and thread counts.

TensorFlow is configured when the student first imports it (an import hook), so a notebook that never
uses it does not pay for the import. The student's own ``keras.utils.set_random_seed`` still wins; this
makes unseeded notebooks repeatable.
"""
import importlib.abc
import importlib.machinery
import os
import random
import sys

import numpy as np

random.seed(0)
np.random.seed(0)


def _configure_tensorflow(tf) -> None:
    threads = int(os.environ.get("AUTOGRADER_THREADS", "1"))
    try:  # must run before TensorFlow starts its thread pools, so before any student op
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    tf.random.set_seed(0)


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Wraps the real loader of ``tensorflow`` to configure it right after it is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _configure_tensorflow(module)


sys.meta_path.insert(0, _AfterImport())
