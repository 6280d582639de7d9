"""Sequence Deep Learning Playground: the library behind the app.

Importable from a notebook; never imports streamlit. Importing it limits PyTorch to one
CPU thread per process (several app sessions share a process on small machines); set the
environment variable ``PLAYGROUND_NUM_THREADS`` to use more in a notebook or a benchmark.
"""
from __future__ import annotations

import os

import torch

__version__ = "0.1.0"

_threads_configured = False


def configure_torch_threads(this_thread: bool = False) -> int:
    """Set torch's intra-op threads once per process (default 1). Returns the count.
    ``this_thread=True``: set it again for the calling thread (a new thread that runs torch ops:
    OpenMP keeps the setting per thread)."""
    global _threads_configured
    n = int(os.environ.get("PLAYGROUND_NUM_THREADS", "1") or 1)
    if not _threads_configured or this_thread:
        torch.set_num_threads(max(1, n))
        _threads_configured = True
    return torch.get_num_threads()


configure_torch_threads()

from playground.seeding import seeded  # noqa: E402
from playground.train import TrainConfig, Trainer  # noqa: E402
from playground.data.split import SplitData  # noqa: E402

__all__ = ["Trainer", "TrainConfig", "SplitData", "seeded", "__version__", "configure_torch_threads"]
