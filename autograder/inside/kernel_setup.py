"""Run once when the sandboxed kernel starts (IPKernelApp.exec_lines): seeds and thread counts.

The student's own ``keras.utils.set_random_seed`` still wins; this makes unseeded notebooks repeatable.
"""
import os
import random

import numpy as np

random.seed(0)
np.random.seed(0)
try:
    import tensorflow as tf
    import keras

    threads = int(os.environ.get("AUTOGRADER_THREADS", "1"))
    # Must happen before TensorFlow starts its thread pools, so before any student op.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(0)
    del tf, keras, threads
except ImportError:  # a notebook without TensorFlow still runs
    pass
del os, random, np
