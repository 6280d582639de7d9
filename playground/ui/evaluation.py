"""The honest-evaluation pieces every training page shows: the train / validation / test split
controls, the learning-rate schedule and early stopping, progress within a long epoch, chance
levels next to scores, and the held-out test set, scored once.

The library decides (``playground.data.split``, ``Trainer.score_test``, ``metrics.chance``); this
module only draws it."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from playground import metrics as M
from playground.data.split import split_shares
from playground.train import SCHEDULES, Trainer
from playground.ui.state import PageState

SPLIT_HELP = ("Three parts, as the course does it: the model learns from the **training** set; the **validation** "
              "set is what the curves, early stopping, the learning-rate schedule and the best epoch read; the "
              "**test** set is held out and scored once, at the end.")


def split_controls(state: PageState, what: str = "sequences", predefined: str | None = None) -> None:
    """Training and validation share sliders (the test set gets the rest). ``predefined``: a
    sentence saying the data brings its own split (the sliders then only carve validation)."""
    K = state.key
    a, b = st.columns(2)
    a.slider("Training (%)", 50 if what != "points" else 10, 90, step=5, key=K("train_pct"), help=SPLIT_HELP)
    b.slider("Validation (%)", 5, 30, step=5, key=K("val_pct"),
             help="Carved out before training; the test set gets what is left (at least 5 %).")
    train, val = int(state.get("train_pct")), int(state.get("val_pct"))
    val_used = round(100 * split_shares(train, val)[1])
    test = 100 - train - val_used
    if predefined:
        st.caption(f"🔒 {predefined}")
    else:
        note = f" (validation cut to {val_used} % to leave 5 % for test)" if val_used != val else ""
        st.caption(f"Split: {train} % train · {val_used} % validation · {test} % test{note}")


def schedule_controls(state: PageState, early_stop: bool = True) -> None:
    """The learning-rate schedule and early-stopping patience (both read the validation loss)."""
    K = state.key
    st.selectbox("Learning-rate schedule", tuple(SCHEDULES), key=K("schedule"), format_func=SCHEDULES.get,
                help="Changes the learning rate between epochs. 'Plateau' halves it when the validation loss has "
                     "not improved for 3 epochs (PyTorch's ReduceLROnPlateau); cosine decays it smoothly over 30 "
                     "epochs; step halves it every 10.")
    if early_stop:
        st.number_input("Early stopping: patience in epochs (0 = off)", 0, 50, step=1, key=K("early_stop"),
                       help="Stop when the validation loss has not improved for this many epochs; the best "
                            "weights are restored. 0 = off.")


def progress_line(tr: Trainer) -> str:
    """'epoch 3 · 120 / 226 mini-batches into epoch 4 (53 %)' so a long epoch never looks frozen."""
    spe = tr.steps_per_epoch
    done = int(round(tr.epoch_progress * spe))
    txt = f"{tr.epoch:,} epochs done"
    if done:
        txt += f" · {done:,} / {spe:,} mini-batches into epoch {tr.epoch + 1} ({tr.epoch_progress:.0%})"
    else:
        txt += f" · {spe:,} mini-batches per epoch"
    if tr.current_lr != tr.config.lr:
        txt += f" · learning rate now {tr.current_lr:.2g} (schedule)"
    if tr.best_epoch and len(tr.history) > 2:
        txt += f" · best validation loss at epoch {tr.best_epoch}"
    return txt


def chance_text(tr: Trainer, metric: str, part: str = "val") -> str:
    """' (chance 0.56)' for a metric of the validation or test set, or ''."""
    y = (tr.data.y_val if part == "val" else tr.data.y_test).cpu().numpy()
    c = M.chance(tr.task, tr.data.y_train.cpu().numpy(), y).get(metric)
    return f"chance {c:.2f}" if c is not None and math.isfinite(c) else ""


def metric_row(tr: Trainer, rec: dict, metrics: tuple[str, ...]) -> None:
    """The validation losses and metrics of the latest epoch, each with its chance level. With more
    than two metrics the tiles are narrow: the loss says 'Val. loss' and the metrics carry their name
    only (a projector cut 'Validation accuracy' to 'Val. acc…'); each tile's help says it is validation."""
    compact = len(metrics) > 2
    what = "Val." if compact else "Validation"
    cols = st.columns(3 + len(metrics))
    cols[0].metric("Epoch", f"{tr.epoch:,}")
    cols[1].metric("Training loss", f"{rec['train_loss']:.4f}")
    cols[2].metric(f"{what} loss", f"{rec['val_loss']:.4f}" if math.isfinite(rec.get("val_loss", math.nan))
                   else "–", help="On the validation set: what early stopping and the schedule read.")
    for c, k in zip(cols[3:], metrics):
        v = rec.get(f"val_{k}")
        name = M.label(k, task=tr.task, capital=True) if compact else f"{what} {M.label(k, task=tr.task)}"
        c.metric(name,
                 "–" if v is None or not np.isfinite(v) else f"{v:.3f}",
                 help=f"On the validation set. A model that ignores its input: {chance_text(tr, k) or 'n/a'}.")


def test_panel(tr: Trainer, metrics: tuple[str, ...], key: str, reference: str | None = None,
               what: str = "sequences") -> None:
    """The held-out test set: a button that scores it, scored by itself when training ends
    (early stopping), shown with chance levels and how often it was looked at. ``reference``:
    a published figure to read beside it (a benchmark's baseline)."""
    if tr.stopped and tr.test_scores is None:
        tr.score_test()              # training is over: the one look the test set is for
    with st.container(border=True):
        st.markdown(f"**🎯 {M.TEST_LABEL.capitalize()}**")
        res = tr.test_scores
        if res is None:
            st.caption(M.TEST_WHY)
            st.button(f"Score the {len(tr.data.y_test):,} test {what} now", key=key,
                      on_click=tr.score_test, disabled=len(tr.data.y_test) == 0,
                      help="Do this once, when you have finished choosing settings by the validation set.")
            return
        parts = [f"loss **{res['loss']:.4f}**"]
        for k in metrics:
            v = res.get(k)
            if v is not None and np.isfinite(v):
                ch = chance_text(tr, k, "test")
                parts.append(f"{M.label(k, task=tr.task)} **{v:.3f}**" + (f" ({ch})" if ch else ""))
        st.markdown(" · ".join(parts))
        looks = res.get("looks", 1)
        st.caption(f"{res['n']:,} {what} never used in training, scored at epoch {res['epoch']}"
                   + (f". ⚠️ Looked at {looks} times: each look that changes your settings makes this number "
                      "more optimistic." if looks > 1 else ". " + M.TEST_WHY))
        if reference:
            st.caption(f"📚 {reference}")
        if res["epoch"] != tr.epoch:
            st.button("Score again (counts as another look)", key=key + ".again", on_click=tr.score_test)


__all__ = ["split_controls", "schedule_controls", "progress_line", "metric_row", "test_panel", "chance_text"]
