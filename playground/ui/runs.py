"""The session's runs and models, and the "Save & export" panel every page shows in one line.

    live.ensure(signature, factory, run_info=dict(spec=spec, page="dna", dataset=name))   # records runs
    model_panel(live.trainer, spec, page="dna", dataset=name,                           # downloads
                extra_downloads=[("Filters (MEME)", meme_text, "filters.meme", "text/plain")])

- every run a page trains is listed on the Run history page (page, data set, model, settings,
  seconds, best metric, curves);
- every trained model stays in the session's model list (the Predict page picks from it): the
  page's current model, the last MAX_MODELS finished runs, and the ones kept with "Keep";
- the panel offers the model bundle (.pt), the training history (CSV), the PyTorch code (.py),
  and whatever the page adds (filters as MEME/JASPAR ...). Charts save PNGs from their toolbar
  (``png_config``).
"""
from __future__ import annotations

import collections
import itertools
from typing import Callable

import streamlit as st

from playground.bundle import LM_TASKS, Bundle, InputSpec, bundle_from_trainer
from playground.runs import RunRecord, new_run_id, run_record

RUNS_KEY = "_runs.records"        # run id -> RunRecord (finished runs)
LIVE_KEY = "_runs.live"           # slot -> {'trainer', 'info', 'run_id'}: each page's current run
MODELS_KEY = "_runs.models"       # model id -> Bundle (finished or kept models)
CACHE_KEY = "_runs.panel_cache"
MAX_MODELS = 12                   # finished models kept automatically (kept ones count too)
MAX_AUTO_KEEP_PARAMS = 5_000_000  # bigger models are only kept when asked ("Keep")
EAGER_BUNDLE_PARAMS = 3_000_000   # up to this size the download is prepared with the page
_model_ids = itertools.count(1)


def _ss():
    return st.session_state


def _live() -> dict:
    return _ss().setdefault(LIVE_KEY, {})


def _records() -> "collections.OrderedDict[str, RunRecord]":
    return _ss().setdefault(RUNS_KEY, collections.OrderedDict())


def _models() -> "collections.OrderedDict[str, Bundle]":
    return _ss().setdefault(MODELS_KEY, collections.OrderedDict())


# ----------------------------------------------------------------------------------------------
# runs
def track(slot: str, trainer, spec=None, *, page: str, dataset: str = "", parameters: dict | None = None,
          label_names=None, input: InputSpec | None = None, model: str | None = None) -> None:
    """Make ``trainer`` the current run of ``slot`` (a page's LiveTraining key). When another
    trainer held the slot, its run is finished: recorded (if it trained) and its model kept."""
    live = _live()
    info = dict(spec=spec, page=page, dataset=dataset, parameters=dict(parameters or {}), label_names=label_names,
                input=input, model=model)
    cur = live.get(slot)
    if cur is not None and cur["trainer"] is trainer:
        cur["info"] = info                     # names may be refined later (e.g. data set name)
        return
    if cur is not None:
        finish(cur)
    live[slot] = {"trainer": trainer, "info": info, "run_id": new_run_id()}


def finish(entry: dict) -> RunRecord | None:
    """Record a run that is over (the page moved on to new settings) and keep its model."""
    tr, info = entry["trainer"], entry["info"]
    if tr is None or getattr(tr, "steps", 0) == 0:
        return None
    rec = _snapshot(tr, info, entry["run_id"], live=False)
    _records()[rec.run_id] = rec
    n_params = sum(p.numel() for p in tr.model.parameters())
    if info.get("spec") is not None and n_params <= MAX_AUTO_KEEP_PARAMS:
        try:
            keep_model(_bundle(tr, info, name=f"run #{rec.run_id}"))
        except Exception:  # noqa: BLE001 - a model that cannot be bundled is still a recorded run
            pass
    return rec


def record(trainer, spec=None, *, page: str, dataset: str = "", parameters: dict | None = None,
           label_names=None, input: InputSpec | None = None, keep: bool = True, model: str | None = None) -> RunRecord:
    """Record a finished run directly (pages that train without LiveTraining, e.g. comparisons)."""
    entry = {"trainer": trainer, "info": dict(spec=spec, page=page, dataset=dataset, parameters=dict(parameters or {}),
                                              label_names=label_names, input=input, model=model),
             "run_id": new_run_id()}
    if keep:
        rec = finish(entry)
        if rec is not None:
            return rec
    rec = _snapshot(trainer, entry["info"], entry["run_id"], live=False)
    _records()[rec.run_id] = rec
    return rec


def record_history(*, page: str, dataset: str, model: str, history: list, seconds: float, task: str,
                   spec: dict | None = None, n_params: int = 0, parameters: dict | None = None, note: str = "") -> RunRecord:
    """Record a run known only as plain data (e.g. a finished run of a comparison: name, history, seconds)."""
    rid = new_run_id()
    rec = RunRecord(run_id=rid, page=page, dataset=dataset, model=model, kind=(spec or {}).get("kind", ""), task=task,
                    parameters=dict(parameters or {}), n_params=int(n_params),
                    epochs=int(history[-1].get("epoch", len(history) - 1)) if history else 0,
                    steps=int(history[-1].get("step", 0)) if history else 0, seconds=float(seconds),
                    history=[dict(h) for h in history], spec=dict(spec or {}), note=note)
    _records()[rid] = rec
    return rec


def _snapshot(tr, info: dict, run_id: str, live: bool) -> RunRecord:
    return run_record(tr, info.get("spec"), page=info["page"], dataset=info.get("dataset", ""),
                      parameters=info.get("parameters"), run_id=run_id, live=live, model=info.get("model"))


def session_runs() -> list[RunRecord]:
    """Every run of the session, oldest first: finished ones and each page's current run."""
    out = list(_records().values())
    for entry in _live().values():
        tr = entry["trainer"]
        if tr is not None and tr.steps > 0 and entry["run_id"] not in _records():
            out.append(_snapshot(tr, entry["info"], entry["run_id"], live=True))
    return sorted(out, key=lambda r: int(r.run_id) if r.run_id.isdigit() else 0)


# ----------------------------------------------------------------------------------------------
# models
def _bundle(tr, info: dict, name: str = "") -> Bundle:
    return bundle_from_trainer(tr, info["spec"], page=info["page"], dataset=info.get("dataset", ""), name=name,
                               label_names=info.get("label_names"), input=info.get("input"),
                               settings=info.get("parameters"))


def keep_model(bundle: Bundle) -> str:
    """Add a bundle to the session's model list; returns its id. The oldest are dropped past MAX_MODELS."""
    models = _models()
    mid = f"m{next(_model_ids)}"
    models[mid] = bundle
    while len(models) > MAX_MODELS:
        models.popitem(last=False)
    return mid


def session_models() -> list[tuple[str, str]]:
    """(id, label) of every model the Predict page can use: each page's current model, then the
    finished and kept ones, newest first."""
    out = []
    for slot, entry in _live().items():
        tr, info = entry["trainer"], entry["info"]
        if tr is None or info.get("spec") is None or tr.steps == 0 or getattr(tr, "task", "") in LM_TASKS:
            continue                 # (a language model predicts tokens: its fine-tuned classifiers are listed)
        out.append((f"live:{slot}", f"Current model on {_page_label(info['page'])}: {info.get('model') or _short(info)}"
                                    f" · epoch {tr.epoch}"))
    for mid, b in reversed(_models().items()):
        if b.task in LM_TASKS:
            continue
        ep = b.training.get("epochs", "?")
        out.append((mid, f"{b.name or mid}: {b.family} on {b.dataset or b.page} · {ep} epochs"))
    return out


def model_stamp(model_id: str) -> tuple:
    """Changes when the model behind ``model_id`` changes (a current model trains on)."""
    if model_id.startswith("live:"):
        tr = (_live().get(model_id[5:]) or {}).get("trainer")
        return (model_id, id(tr), getattr(tr, "steps", None))
    return (model_id,)


def get_model(model_id: str) -> Bundle | None:
    """The bundle for an id from ``session_models`` (current models are bundled now)."""
    if model_id.startswith("live:"):
        entry = _live().get(model_id[5:])
        if entry is None or entry["trainer"] is None or entry["info"].get("spec") is None:
            return None
        return _bundle(entry["trainer"], entry["info"], name=f"current {entry['info']['page']} model")
    return _models().get(model_id)


def _page_label(page: str) -> str:
    from playground.runs import PAGE_LABELS

    return PAGE_LABELS.get(page, page)


def _short(info: dict) -> str:
    spec = info.get("spec")
    d = spec.describe() if spec is not None else ""
    return (d[:48] + "…") if len(d) > 50 else d


# ----------------------------------------------------------------------------------------------
# the Save & export panel
TRAINING_PAGES = (("pages/1_Neural_Network_Basics.py", "Neural network basics", "🧠"),
                  ("pages/2_DNA_CNN.py", "DNA & CNNs", "🧬"), ("pages/3_Sequence_Models.py", "Sequence models", "🔁"),
                  ("pages/7_Language_Models.py", "Language models", "🗣️"))


def training_page_links() -> None:
    """Links to the pages that train models, in a row (plain labels when a page is run on its
    own, as in AppTest, where there is no navigation)."""
    from streamlit.errors import StreamlitAPIException

    for col, (path, label, icon) in zip(st.columns(len(TRAINING_PAGES)), TRAINING_PAGES):
        try:
            col.page_link(path, label=label, icon=icon)
        except StreamlitAPIException:
            col.markdown(f"{icon} {label}")


def png_config(filename: str) -> dict:
    """``config=`` for st.plotly_chart: the camera icon saves a PNG (2x) under this file name."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2, "filename": filename}}


def _cached(page: str, key, build: Callable[[], dict]) -> dict:
    cache = _ss().setdefault(CACHE_KEY, {})
    got = cache.get(page)
    if got is not None and got[0] == key:
        return got[1]
    value = build()
    cache[page] = (key, value)
    return value


def model_panel(trainer, spec, *, page: str, dataset: str = "", label_names=None, input: InputSpec | None = None,
                settings: dict | None = None, extra_downloads=(), code: str | Callable[[], str] | None = None,
                key: str | None = None, title: str = "💾 Save & export") -> None:
    """Downloads for the page's current run: model bundle, history CSV, PyTorch code, extras
    (``(label, data, file_name, mime)``), and "Keep" (adds the model to this session's list)."""
    key = key or page
    if trainer is None:
        return
    info = dict(spec=spec, page=page, dataset=dataset, parameters=dict(settings or {}), label_names=label_names,
                input=input)
    st.markdown(f"##### {title}")
    if trainer.steps == 0:
        st.caption("Train first (▶ Play or Step): then the model, its training history and its code can be saved.")
    stamp = (id(trainer), trainer.steps, trainer.epoch, dataset)

    def build() -> dict:
        out = {"history": trainer.history_frame().to_csv(index=False, float_format="%.6g")}
        n_params = sum(p.numel() for p in trainer.model.parameters())
        out["bundle"] = None
        out["bundle_error"] = None
        try:
            b = _bundle(trainer, info, name=f"{page} model")
            out["bundle_name"] = b.file_name()
            out["bundle"] = b.to_bytes() if n_params <= EAGER_BUNDLE_PARAMS else None
        except Exception as e:  # noqa: BLE001 - shown as a message, never a traceback
            out["bundle_error"] = str(e)
            out["bundle_name"] = "model.pt"
        try:
            if code is not None:
                out["code"] = code() if callable(code) else code
            else:
                from playground.codegen import script_for_trainer

                out["code"] = script_for_trainer(trainer, spec, input, title=f"{_page_label(page)} · {dataset}")
        except Exception as e:  # noqa: BLE001
            out["code"] = None
            out["code_error"] = str(e)
        return out

    got = _cached(key, stamp, build)
    cols = st.columns(4)
    if got["bundle_error"]:
        cols[0].caption(f"Model bundle unavailable: {got['bundle_error']}")
    else:
        data = got["bundle"] if got["bundle"] is not None else (lambda: _bundle(trainer, info).to_bytes())
        cols[0].download_button("⬇️ Model (.pt)", data, file_name=got["bundle_name"], mime="application/octet-stream",
                                key=f"{key}.dl_bundle", width="stretch", on_click="ignore",
                                help="One file: spec, weights, encoding, labels, settings, metrics. Load it on the "
                                     "Predict page, or in Python: torch.load(path, weights_only=True).")
    cols[1].download_button("⬇️ History (CSV)", got["history"], file_name=f"{key}_history.csv", mime="text/csv",
                            key=f"{key}.dl_history", width="stretch", on_click="ignore",
                            help="Loss and metrics after every epoch.")
    if got.get("code"):
        cols[2].download_button("⬇️ PyTorch code (.py)", got["code"], file_name=f"train_{spec.kind}.py",
                                mime="text/x-python", key=f"{key}.dl_code", width="stretch", on_click="ignore",
                                help="A standalone script: the same model, data and training loop.")
    else:
        cols[2].caption(f"No code: {got.get('code_error', '')}")

    def _keep():
        try:
            mid = keep_model(_bundle(trainer, info, name=f"{page} model, epoch {trainer.epoch}"))
            _ss()[f"{key}._kept"] = mid
        except Exception as e:  # noqa: BLE001
            _ss()[f"{key}._kept"] = f"error: {e}"

    cols[3].button("📌 Keep for Predict", key=f"{key}.keep", on_click=_keep, width="stretch",
                   disabled=trainer.steps == 0, help="Adds this model to the session's list on the Predict page.")
    kept = _ss().get(f"{key}._kept")
    if kept:
        if kept.startswith("error"):
            st.error(kept, icon="🚫")
        else:
            st.success("Kept: the model is in this session's list on the **Predict** page.", icon="📌")
    extras = list(extra_downloads)
    if extras:
        ecols = st.columns(max(4, len(extras)))
        for i, (label, data, fname, mime) in enumerate(extras):
            ecols[i].download_button(f"⬇️ {label}", data, file_name=fname, mime=mime, key=f"{key}.dl_extra{i}",
                                     width="stretch", on_click="ignore")
    st.caption("Figures: the 📷 icon in each chart's toolbar saves it as a PNG. Every run of this session is listed "
               "on the **Run history** page; its models are on the **Predict** page.")


__all__ = ["track", "finish", "record", "record_history", "session_runs", "keep_model", "session_models", "get_model", "model_stamp", "model_panel",
           "png_config", "MAX_MODELS"]
