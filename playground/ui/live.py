"""Live training: Play / Pause / Step / Reset outside a fragment that trains a time-boxed
chunk of steps and redraws, several times a second, while playing.

    live = LiveTraining("basics")
    trainer = live.ensure(signature, make_trainer)   # rebuilt when the signature changes
    live.controls()                                  # the buttons
    live.run(draw)                                   # draw(trainer) inside the fragment
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

from playground.train import Trainer

TICK_SECONDS = 0.05     # timer while playing: the browser asks again this soon after a redraw
TRAIN_BUDGET = 0.08     # seconds of training per redraw (~6 redraws/s with drawing)


class LiveTraining:
    def __init__(self, key: str):
        self.key = key

    # session-state slots
    @property
    def _tk(self):
        return f"{self.key}._trainer"

    @property
    def _pk(self):
        return f"{self.key}._playing"

    @property
    def _sk(self):
        return f"{self.key}._signature"

    @property
    def trainer(self) -> Trainer | None:
        return st.session_state.get(self._tk)

    @property
    def playing(self) -> bool:
        return bool(st.session_state.get(self._pk, False))

    def set_playing(self, value: bool) -> None:
        st.session_state[self._pk] = bool(value)

    def ensure(self, signature: str, factory: Callable[[], Trainer], run_info: dict | None = None) -> Trainer:
        """Return the session's trainer, building a new one when the settings that define the
        run (data, model, optimizer ...) changed. Training stops on a rebuild.

        ``run_info`` (optional) records the run in the session's run list and model list
        (Run history, Predict pages): ``dict(spec=..., page=..., dataset=..., parameters=...,
        label_names=..., input=...)``, the keywords of ``playground.ui.runs.track``."""
        ss = st.session_state
        if ss.get(self._tk) is None or ss.get(self._sk) != signature:
            ss[self._tk] = factory()
            ss[self._sk] = signature
            ss[self._pk] = False
        if run_info is not None:
            from playground.ui.runs import track

            track(self.key, ss[self._tk], **run_info)
        return ss[self._tk]

    def reset(self) -> None:
        st.session_state[self._sk] = None
        st.session_state[self._pk] = False

    def _toggle(self):
        tr = self.trainer
        self.set_playing(not self.playing and not (tr is not None and tr.done))

    def _step(self):
        self.set_playing(False)
        tr = self.trainer
        if tr is not None and not tr.done:
            tr.run_epochs(1)

    def controls(self, step_label: str = "Step") -> None:
        c1, c2, c3 = st.columns(3)
        tr = self.trainer
        done = tr is not None and tr.done
        c1.button("⏸ Pause" if self.playing else "▶ Play", key=f"{self.key}.play", on_click=self._toggle,
                  type="primary", disabled=done and not self.playing, width="stretch")
        c2.button("⏭ " + step_label, key=f"{self.key}.step", on_click=self._step, disabled=done,
                  width="stretch", help="Train one epoch, then pause.")
        c3.button("↺ Reset", key=f"{self.key}.reset", on_click=self.reset, width="stretch",
                  help="New initial weights from the seed; epoch back to 0.")

    def throttle(self, name: str, build: Callable[[], object], seconds: float = 0.5):
        """While playing, rebuild an expensive figure at most every ``seconds`` and reuse the
        last one in between (a redraw then costs almost nothing). Always fresh when paused."""
        import time

        slot = f"{self.key}._cache.{name}"
        now = time.perf_counter()
        cached = st.session_state.get(slot)
        if self.playing and cached is not None and now - cached[0] < seconds:
            return cached[1]
        value = build()
        st.session_state[slot] = (now, value)
        return value

    def run(self, draw: Callable[[Trainer], None], budget: float = TRAIN_BUDGET, interval: float = TICK_SECONDS):
        """Train (when playing) and draw inside a fragment that reruns every ``interval`` s."""
        playing = self.playing

        @st.fragment(run_every=interval if playing else None)
        def _live():
            tr = self.trainer
            if tr is None:
                return
            if self.playing and not tr.done:
                tr.run_for(budget)
            if self.playing and tr.done:
                self.set_playing(False)
                st.rerun()  # full rerun: stops the timer and updates the buttons
            draw(tr)

        _live()
