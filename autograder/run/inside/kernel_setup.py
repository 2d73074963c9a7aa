"""Run once when the sandboxed kernel starts (IPKernelApp.exec_lines), before any student cell.

Seeds and thread counts; the grader's own references to numpy and json functions (``probe``,
``export``: bound on import, so patches made by student cells do not reach them); and import hooks:
TensorFlow is configured when the student first imports it, ``keras.Model.fit`` is wrapped by the
grader's fit recorder (``fit_hook``), ``evaluate`` and ``predict`` by ``evaluate_hook`` when Keras is
first imported, and the functions that make confusion matrices (scikit-learn's, pandas' ``crosstab``,
TensorFlow's) by ``confusion_hook`` when their library is, so a notebook that never uses them does not
pay for the import. The student's own ``keras.utils.set_random_seed`` still wins; this
makes unseeded notebooks repeatable.
"""
import importlib.abc
import importlib.machinery
import os
import random
import sys

import numpy as np

# Imported now, before student code, so the functions they bind (numpy's, np.save, json.dump) are the real ones.
from . import confusion_hook, evaluate_hook, export, fit_hook, probe  # noqa: F401

random.seed(0)
np.random.seed(0)


def _configure_tensorflow(tf) -> None:
    threads = int(os.environ["AUTOGRADER_THREADS"])  # always set by the grader (its [execution] threads)
    try:  # must run before TensorFlow starts its thread pools, so before any student op
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    tf.random.set_seed(0)


#: Module -> what to do right after it is first imported.
_AFTER_IMPORT = {"tensorflow": (_configure_tensorflow, confusion_hook.after_tensorflow),
                 "keras": (fit_hook.install, evaluate_hook.install),
                 "sklearn.metrics": (confusion_hook.after_sklearn_metrics,), "pandas": (confusion_hook.after_pandas,)}


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Wraps the real loader of each pending module to act right after it is imported."""

    def __init__(self, pending: dict) -> None:
        self._pending, self._loaders = pending, {}

    def find_spec(self, name, path=None, target=None):
        if name not in self._pending:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            self._loaders[name], spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        self._loaders[module.__name__].exec_module(module)
        for action in self._pending.pop(module.__name__):
            action(module)
        if not self._pending:
            sys.meta_path.remove(self)


_pending = {name: action for name, action in _AFTER_IMPORT.items() if name not in sys.modules}
for _name in _AFTER_IMPORT.keys() - _pending.keys():
    for _action in _AFTER_IMPORT[_name]:
        _action(sys.modules[_name])
if _pending:
    sys.meta_path.insert(0, _AfterImport(_pending))
