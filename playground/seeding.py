"""Reproducibility helpers.

Model initialisation uses torch's global random generator. Several app sessions share one
process, so construction happens under a lock with the generator forked: the same seed
always gives the same weights, whatever other sessions do meanwhile.
"""
from __future__ import annotations

import contextlib
import random
import threading

import numpy as np
import torch

_lock = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block (e.g. building a model) with torch/numpy/random seeded, without
    disturbing the process-wide random state seen by other code."""
    with _lock, torch.random.fork_rng(devices=[]):
        np_state = np.random.get_state()
        py_state = random.getstate()
        torch.manual_seed(int(seed))
        np.random.seed(int(seed) % (2**32))
        random.seed(int(seed))
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def rng(seed: int) -> np.random.Generator:
    """A numpy Generator for data generation: data is a pure function of its seed."""
    return np.random.default_rng(int(seed))
