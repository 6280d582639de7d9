"""Experiment tracking on MLflow (optional): a run's settings, its history and its model, in a store you keep.

    from playground import tracking
    logged = tracking.log_run(name="dna cnn", params={"lr": 0.003}, history=trainer.history,
                              test=trainer.score_test(), artifacts={"model.pt": bundle.to_bytes()})
    logged.run_id, logged.uri            # file:///.../mlruns by default

Where: ``MLFLOW_TRACKING_URI`` when set (a ``sqlite:///mlflow.db`` file, a team's tracking server),
else a local ``./mlruns`` folder (MLflow's file store) in the current directory. Nothing here
starts or needs a network service; browse the store with ``mlflow ui --backend-store-uri ./mlruns``
(the full ``mlflow`` package; this project needs only ``mlflow-skinny``).

What a run holds:
- params: the page's settings (as its link writes them) and the page, data set and model;
- metrics: every number of the history, per epoch (``step`` = epoch): train_loss, val_loss,
  val_accuracy, lr, seconds ...; the held-out test set, scored once at the end, as
  ``heldout_test_<metric>`` with the tag ``heldout_test`` saying so;
- artifacts: the model bundle (the file the Predict page loads) and the history as CSV.

Used by ``python -m playground train --mlflow`` and the Run history page's "Export to MLflow".
Pure Python: never imports streamlit.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from playground.errors import PlaygroundError

# No network, ever: MLflow 3 sends usage telemetry from the moment it is imported unless told not to.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "playground"
DEFAULT_DIR = "mlruns"
SKIP_METRICS = ("epoch", "step")          # the step is the epoch; the mini-batch count is a param-like detail
MAX_PARAM_CHARS = 6000                    # MLflow's limit on a param value
TEST_PREFIX = "heldout_test_"


class TrackingError(PlaygroundError):
    """MLflow is missing, or its store cannot be written (which store, what to do)."""


@dataclasses.dataclass
class Logged:
    run_id: str
    experiment: str
    experiment_id: str
    uri: str


def available() -> bool:
    """True when the mlflow client (mlflow-skinny or mlflow) is installed."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None     # without importing it (a second or so)


def browse_command(uri: str | None = None) -> str:
    """The command that shows a store in MLflow's web UI (the full ``mlflow`` package)."""
    uri = tracking_uri(uri)
    env = "MLFLOW_ALLOW_FILE_STORE=true " if _is_file_store(uri) else ""
    return f"{env}mlflow ui --backend-store-uri {uri}"


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else ``file://`` + the absolute path of ./mlruns."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if uri:
        return uri
    return (Path.cwd() / DEFAULT_DIR).resolve().as_uri()


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


def _client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise TrackingError("Experiment tracking needs MLflow's client, which is not installed here.",
                            "Install it: pip install mlflow-skinny (see requirements.txt).") from None
    if _is_file_store(uri):
        # MLflow 3 keeps its ./mlruns file store in maintenance mode behind this switch; it is the
        # local, server-free store this project uses by default (set MLFLOW_TRACKING_URI for another)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i: i + n]


def _param_text(v: Any) -> str:
    if isinstance(v, float):
        text = f"{v:g}"
    elif isinstance(v, (list, tuple)):
        text = ",".join(_param_text(x) for x in v)
    else:
        text = str(v)
    return text[:MAX_PARAM_CHARS]


def log_run(*, name: str, params: dict, history: list[dict], test: dict | None = None, tags: dict | None = None,
            artifacts: dict[str, bytes] | None = None, experiment: str | None = None, uri: str | None = None) -> Logged:
    """Log one finished run and return where it went. ``history``: one dict per epoch (the
    Trainer's); ``test``: ``Trainer.score_test()``'s result (scored once), or None;
    ``artifacts``: file name -> bytes (the bundle, a CSV ...). Raises TrackingError."""
    uri = tracking_uri(uri)
    experiment = experiment or EXPERIMENT
    try:
        client = _client(uri)
        from mlflow.entities import Metric, Param

        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
        all_tags = {"mlflow.source.name": "sequence-dl-playground", **{k: str(v) for k, v in (tags or {}).items()}}
        if test:
            all_tags["heldout_test"] = (f"{TEST_PREFIX}* metrics: the held-out test set ({test.get('n', '?')} "
                                        f"examples), scored once, after training (epoch {test.get('epoch', '?')}); "
                                        "every val_* metric is on the validation set")
        run = client.create_run(exp_id, run_name=name, tags=all_tags)
        rid = run.info.run_id
        ps = [Param(str(k)[:250], _param_text(v)) for k, v in params.items()]
        for part in _chunks(ps, 100):
            client.log_batch(rid, params=part)
        now = int(time.time() * 1000)
        ms = []
        for i, rec in enumerate(history):
            step = int(rec.get("epoch", i))
            ms += [Metric(k, float(v), now, step) for k, v in rec.items() if k not in SKIP_METRICS and _finite(v)]
        if test:
            step = int(test.get("epoch", len(history) - 1))
            ms += [Metric(f"{TEST_PREFIX}{k}", float(v), now, step) for k, v in test.items()
                   if k not in ("epoch", "looks", "n") and _finite(v)]
        for part in _chunks(ms, 1000):
            client.log_batch(rid, metrics=part)
        if artifacts:
            with tempfile.TemporaryDirectory() as tmp:
                for fname, data in artifacts.items():
                    p = Path(tmp) / Path(fname).name
                    p.write_bytes(data if isinstance(data, bytes) else str(data).encode())
                    client.log_artifact(rid, str(p))
        client.set_terminated(rid, "FINISHED")
    except TrackingError:
        raise
    except Exception as e:  # noqa: BLE001 - any store failure is the same story for the person
        raise TrackingError(f"MLflow could not log to {uri}: {type(e).__name__}: {str(e)[:300]}",
                            "Check MLFLOW_TRACKING_URI (or that ./mlruns can be written).") from None
    return Logged(rid, experiment, str(exp_id), uri)


def _history_csv(history: list[dict]) -> bytes:
    import pandas as pd

    return pd.DataFrame(history).to_csv(index=False, float_format="%.6g").encode()


def log_training(trainer, info: dict, values: dict, schema, *, test: dict | None = None, bundle=None,
                 experiment: str | None = None, uri: str | None = None, source: str = "python -m playground train") -> Logged:
    """A run trained from a page's settings (the CLI's ``train --mlflow``): params = the page's
    settings that define the run (as its link writes them), metrics = the history per epoch and
    the held-out test score, artifacts = the bundle and the history CSV."""
    spec = info.get("spec")
    params = {"page": info.get("page", ""), "dataset": info.get("dataset", "")}
    params.update({n: schema[n].encode(values[n]) for n in schema.run_names + schema.live_names if n in values})
    tags = {"page": info.get("page", ""), "dataset": info.get("dataset", ""),
            "model": spec.describe() if spec is not None else "", "source": source,
            "epochs": str(trainer.epoch)}
    if trainer.stopped:
        tags["stopped"] = trainer.stopped
    if trainer.diverged:
        tags["diverged"] = trainer.diverged
    artifacts = {"history.csv": _history_csv(trainer.history)}
    if bundle is not None:
        artifacts[bundle.file_name()] = bundle.to_bytes()
    name = f"{info.get('page', 'run')} · {(spec.describe() if spec is not None else '')[:60]}"
    return log_run(name=name, params=params, history=trainer.history, test=test, tags=tags, artifacts=artifacts,
                   experiment=experiment, uri=uri)


def log_record(record, *, bundle_bytes: bytes | None = None, bundle_name: str = "model.pt",
               experiment: str | None = None, uri: str | None = None) -> Logged:
    """A run of the Run history page (a ``playground.runs.RunRecord``): its settings, its history
    per epoch and, when the session still has it, its model bundle."""
    params = {"page": record.page, "dataset": record.dataset, "model": record.model, "kind": record.kind,
              "task": record.task, "weights": record.n_params, **record.parameters}
    tags = {"page": record.page_label, "dataset": record.dataset, "model": record.model,
            "source": "Run history page (Export to MLflow)", "session_run": record.run_id,
            "epochs": str(record.epochs)}
    if record.note:
        tags["note"] = record.note
    artifacts = {"history.csv": _history_csv(record.history)}
    if bundle_bytes:
        artifacts[bundle_name] = bundle_bytes
    return log_run(name=f"#{record.run_id} {record.page_label} · {record.model[:60]}", params=params,
                   history=record.history, tags=tags, artifacts=artifacts, experiment=experiment, uri=uri)


__all__ = ["log_run", "log_training", "log_record", "tracking_uri", "browse_command", "available", "Logged", "TrackingError",
           "EXPERIMENT", "TEST_PREFIX"]
