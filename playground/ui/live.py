"""Live training: Play / Pause / Step / Reset outside a fragment that redraws several times a
second while playing, with training running in a background thread between the redraws.

    live = LiveTraining("basics")
    trainer = live.ensure(signature, make_trainer)   # rebuilt when the signature changes
    live.controls()                                  # the buttons
    live.run(draw)                                   # draw(trainer) inside the fragment

How a played second is spent: the fragment pauses the session's training thread, draws the
trainer's state and hands the trainer back; while the browser renders and asks for the next
redraw (~0.1 s), the thread trains. So drawing never competes with training for the trainer,
and training fills the time the server would otherwise wait. Every full script run of the session
(``setup_page``) and every button callback pauses the thread first, so nothing else ever reads a
trainer that is being trained. The thread stops by itself when no redraw has come for
``KEEP_ALIVE`` seconds (tab closed, page left), at the end of training, and on Pause.
Where no background training happens (the first redraw after Play, Streamlit's AppTest, which has
no browser timer), the fragment trains ``TRAIN_BUDGET`` seconds itself.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import streamlit as st

from playground.train import Trainer

TICK_SECONDS = 0.05     # timer while playing: the browser asks again this soon after a redraw
TRAIN_BUDGET = 0.08     # seconds the fragment trains itself when the background thread is not running
CHUNK_SECONDS = 0.01    # the thread trains in chunks this long, so a redraw waits at most about this
KEEP_ALIVE = 1.0        # the thread stops when no redraw has come for this long


class TrainingThread:
    """One session's background trainer. ``hold()`` (script thread) waits for the current chunk
    to end and keeps the thread waiting; ``release(trainer)`` lets it train again for
    ``KEEP_ALIVE`` seconds. Errors end the thread and are kept in ``error``."""

    def __init__(self):
        self._cond = threading.Condition()
        self._trainer: Trainer | None = None
        self._held = True
        self._busy = False
        self._until = 0.0
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.steps = 0                  # steps trained in the background (all runs)

    @property
    def active(self) -> bool:
        """The thread is alive and was released less than KEEP_ALIVE s ago."""
        with self._cond:
            return self._thread is not None and time.monotonic() < self._until

    def hold(self) -> None:
        with self._cond:
            self._held = True
            while self._busy:
                self._cond.wait(1.0)

    def stop(self) -> None:
        """Hold, forget the trainer and let the thread end."""
        with self._cond:
            self._held = True
            self._until = 0.0
            while self._busy:
                self._cond.wait(1.0)
            self._trainer = None
            self._cond.notify_all()

    def release(self, trainer: Trainer) -> None:
        with self._cond:
            self._trainer = trainer
            self._held = False
            self._until = time.monotonic() + KEEP_ALIVE
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="playground-training", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        import playground

        playground.configure_torch_threads(this_thread=True)
        while True:
            with self._cond:
                while self._held and time.monotonic() < self._until:
                    self._cond.wait(0.1)
                tr = self._trainer
                if time.monotonic() >= self._until or tr is None or tr.done:
                    self._thread = None
                    return
                self._busy = True
            try:
                self.steps += tr.run_for(CHUNK_SECONDS)["steps_done"]
            except Exception as e:  # noqa: BLE001 - shown on the page, never a traceback
                self.error = f"{type(e).__name__}: {e}"
                with self._cond:
                    self._until = 0.0
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def hold_session_training() -> None:
    """Pause every background trainer of this session (called at the start of each full run)."""
    for k in list(st.session_state.keys()):
        v = st.session_state.get(k)
        if isinstance(v, TrainingThread):
            v.hold()


def _fragment_rerun() -> bool:
    """True inside a rerun of fragments only (not a full script run)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return bool(ctx is not None and ctx.fragment_ids_this_run)
    except Exception:  # noqa: BLE001 - unknown Streamlit internals: no background training
        return False


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
    def _wk(self):
        return f"{self.key}._thread"

    @property
    def thread(self) -> TrainingThread:
        ss = st.session_state
        if not isinstance(ss.get(self._wk), TrainingThread):
            ss[self._wk] = TrainingThread()
        return ss[self._wk]

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
        self.thread.hold()
        if ss.get(self._tk) is None or ss.get(self._sk) != signature:
            self.thread.stop()
            ss[self._tk] = factory()
            ss[self._sk] = signature
            ss[self._pk] = False
        if run_info is not None:
            from playground.ui.runs import track

            track(self.key, ss[self._tk], **run_info)
        return ss[self._tk]

    def reset(self) -> None:
        self.thread.stop()
        st.session_state[self._sk] = None
        st.session_state[self._pk] = False

    def _play(self):
        tr = self.trainer
        self.set_playing(not (tr is not None and tr.done))

    def _pause(self):
        self.thread.hold()
        self.set_playing(False)

    def _step(self):
        self.thread.hold()
        self.set_playing(False)
        tr = self.trainer
        if tr is not None and not tr.done:
            tr.run_epochs(1)

    def controls(self, step_label: str = "Step") -> None:
        c1, c2, c3 = st.columns(3)
        tr = self.trainer
        done = tr is not None and tr.done
        # Two buttons with their own keys, each doing one thing (not one toggle): a click that
        # reaches the script twice (coalesced with the timer's reruns) still means what it said.
        if self.playing:
            c1.button("⏸ Pause", key=f"{self.key}.pause", on_click=self._pause, type="primary", width="stretch")
        else:
            c1.button("▶ Play", key=f"{self.key}.play", on_click=self._play, type="primary", disabled=done,
                      width="stretch")
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
        """Draw (and keep training while playing) inside a fragment that reruns every ``interval`` s."""
        playing = self.playing

        @st.fragment(run_every=interval if playing else None)
        def _live():
            tr = self.trainer
            if tr is None:
                return
            worker = self.thread
            background = worker.active
            worker.hold()
            if worker.error:
                st.error(f"Training stopped: {worker.error}", icon="💥")
                worker.error = None
                self.set_playing(False)
            if self.playing and not tr.done and not background:
                tr.run_for(budget)
            if self.playing and tr.done:
                self.set_playing(False)
                st.rerun()  # full rerun: stops the timer and updates the buttons
            draw(tr)
            if self.playing and not tr.done and _fragment_rerun():
                worker.release(tr)          # train while the browser renders this redraw

        _live()
