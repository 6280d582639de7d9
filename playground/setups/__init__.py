"""One module per training page: its settings (``PARAMS``, ``SCHEMA``), its private session
slots (``PRIVATE``) and ``build(values) -> Run``, the run exactly as the page trains it.

The page, the lessons (``playground.lessons``), the code export and the tests all build a run
through ``build``, so a setting's default and its meaning are written once::

    from playground.setups import basics
    run = basics.build({"dataset": "xor", "lr": 0.1})   # missing settings take their defaults
    trainer = run.make_trainer()                          # seeded data, weights and shuffling

Pure Python: never imports streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from playground.settings import Schema
from playground.train import TrainConfig, Trainer


@dataclass
class Run:
    """What a page trains for one set of values.

    data:      the data set (a ``SplitData``, or the page's own data object)
    spec:      the model spec (``ModelSpec``), or None where the page has no single model
    config:    the ``TrainConfig``, or None
    signature: the rebuild signature (``SCHEMA.signature(values)``): the page rebuilds its
               trainer exactly when it changes
    extras:    anything else the page, the lessons or the code export need (the planted
               motifs, the features, ...)
    metrics:   page-specific lesson metrics: name -> fn(trainer) -> float (on the current weights)
    factory:   builds the seeded trainer when the default (``build_model(spec, config.seed)``
               on ``data`` with a copy of ``config``) is not how the page does it
    """

    data: Any
    spec: Any = None
    config: TrainConfig | None = None
    signature: str = ""
    extras: dict = field(default_factory=dict)
    metrics: dict[str, Callable[[Trainer], float]] = field(default_factory=dict)
    factory: Callable[["Run"], Trainer] | None = None

    def make_trainer(self) -> Trainer:
        """A fresh trainer for this run: same seeded data, initial weights and shuffling every time."""
        if self.factory is not None:
            return self.factory(self)
        if self.spec is None or self.config is None:
            raise ValueError("this run has no model spec or training config to build a trainer from")
        from playground.models.base import build_model

        return Trainer(build_model(self.spec, int(self.config.seed)), self.data, TrainConfig(**vars(self.config)))

    trainer = make_trainer   # alias: ``run.trainer()``


def complete(schema: Schema, values: dict) -> dict:
    """``values`` with every missing setting at its schema default (classroom settings included)."""
    return {**schema.defaults(classroom=True), **values}
