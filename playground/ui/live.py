"""Live training: Play / Pause / Step / Reset outside a fragment that redraws several times a
second while playing, with training running in the background between the redraws.

    live = LiveTraining("basics")
    trainer = live.ensure(signature, make_trainer)   # rebuilt when the signature changes
    live.controls()                                  # the buttons
    live.run(draw)                                   # draw(trainer) inside the fragment

Where the training runs. With spare cores (``playground.workers``: one worker process per core
beyond the first), a playing run moves to a worker process, which trains every playing run of the
server round-robin, a short slice each; the page's trainer is then a mirror that each redraw
syncs from the worker's newest snapshot. Without workers (one core, ``PLAYGROUND_TRAIN_WORKERS=0``,
runs too big to move) a ``TrainingThread`` of the session trains between the redraws, in this
process. Either way, every full script run of the session (``setup_page``) and every button
callback calls ``hold()`` first: the run comes back (in place, exactly where it was) and nothing
else ever reads a trainer that is being trained.

Sharing the server fairly (a class on one process). Streamlit's fragment timer asks for the next
redraw every interval, whether or not the last one has arrived, and a new fragment run drops the
previous run's messages that were not sent yet. So each playing redraw ends by retiming the
browser (``browser_interval``, ``_retime_browser``: Streamlit's own ``auto_rerun`` message, never
the same interval twice, so the frontend restarts its timer when the redraw arrives): the browser
asks again after the rest of the session's period, counted from delivery. A process-wide
``Scheduler`` lets one redraw draw at a time (the session that waited longest since its last
redraw next) and keeps a budget:
redraws start at most one per ``cost / share`` seconds, where ``cost`` is steered once a second so
that the process's CPU time that was not training (the redraws, Streamlit sending them, clicks,
page loads: ``showing_cpu``) is ``share`` of one core (``LOCAL_DRAW_SHARE`` while the runs train
on threads here, ``DRAW_SHARE`` with worker processes). Each playing session's redraw period is
then about ``playing sessions × cost / share`` (``MIN_PERIOD`` to ``MAX_PERIOD``). After drawing,
the fragment waits until its messages have left for the browser. A full run in progress
(``FullRuns``: ⏸ Pause, ▶ Play, a changed setting, a page load) goes first: new redraws and the
training threads wait for it (at most ``CLICK_PRIORITY_S``), and it waits until its live charts
have left before it goes on (the timer's waiting fragment run would clear them). When the server
is full, the page says so and redraws less often; it never freezes. Where no background training
happens (the first redraw after Play of a lone student, Streamlit's AppTest, which has no browser
timer), the fragment trains ``TRAIN_BUDGET`` s itself; a real server's full runs do not.
What each step costs the server's main process in CPU: ``python bench/redraw_cost.py``.
Runs left idle (nobody played or looked for ``IDLE_RELEASE_S``) give their trainer's memory back.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
import weakref
from typing import Callable

import streamlit as st

from playground.train import Trainer
from playground.workers import usable_cores

TICK_SECONDS = 0.05     # browser timer while playing, until the first redraw retimes it (see browser_interval)
MIN_INTERVAL = 0.02     # the retimed timer: at least this long after a redraw arrived
TRAIN_BUDGET = 0.08     # seconds the fragment trains itself when the background thread is not running
CHUNK_SECONDS = 0.01    # the thread trains in chunks this long, so a redraw waits at most about this
KEEP_ALIVE = 1.0        # background training stops when no redraw has come for this long (+ the period)
MIN_PERIOD = 0.1        # a playing session redraws at most 10 times a second
MAX_PERIOD = 5.0        # ... and at least every 5 s, however busy the server
DRAW_SHARE = 0.9        # of one core, what showing may take (redraws, their sending, clicks, page loads)
LOCAL_DRAW_SHARE = 0.5  # ... when the runs train in this process (threads): the other half is training
COST_WINDOW_S = 1.0     # the cost of a redraw is measured over windows this long (see Scheduler)
MAX_COST = 0.25         # ... and counted as at most this (a window of clicks and page loads is no redraw)
COST_STEP = 1.5         # ... changing by at most this factor per window
CLICK_PRIORITY_S = 1.0  # a full run (a click, a page load) goes before redraws and training this long at most
BUSY_PERIOD = 0.6       # above this redraw period, the page says the server is busy
DELIVERY_WAIT = 0.5     # at most this long for a redraw's messages to leave for the browser
FULL_RUN_DELIVERY_WAIT = 3.0    # ... and for a full run's live charts (see LiveTraining.run)
BROWSER_EAGER = 0.75    # the browser asks again after this part of its period (so a turn never waits for it) ...
BROWSER_MAX_INTERVAL = 1.0  # ... and at most this long (a period grown by a burst of clicks shrinks soon)
WORKERS_FROM = 2        # runs move to worker processes once this many sessions play
IDLE_RELEASE_S = 900.0  # a run nobody played or looked at for this long gives back its memory


class _TrainingCPU:
    """CPU seconds this process spent training (the background threads' chunks and the first
    redraw's own training), so that what showing costs is the process's CPU time minus this."""

    def __init__(self):
        self._lock = threading.Lock()
        self.total = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.total += seconds


TRAINING_CPU = _TrainingCPU()


def showing_cpu() -> float:
    """CPU seconds of this process so far that were not training: redraws, sending them, clicks,
    page loads, Streamlit's own work (all threads of the process; training threads left out)."""
    return time.process_time() - TRAINING_CPU.total


class FullRuns:
    """The full script runs in progress in this process (a click, a changed setting, a page load).
    While one is, redraws and background training wait (at most ``CLICK_PRIORITY_S`` from its
    start), so ⏸ Pause never queues behind the other students' redraws for the one GIL. A full run
    is over when its script thread ends or starts a fragment run (the same ``ScriptRunContext`` is
    reused for each run of a script thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[int, tuple] = {}      # id(ctx) -> (ctx, thread, started)

    def start(self, ctx=None, thread: threading.Thread | None = None) -> None:
        ctx = _run_context() if ctx is None else ctx
        if ctx is None or getattr(ctx, "fragment_ids_this_run", None):
            return
        with self._lock:
            self._runs[id(ctx)] = (ctx, thread or threading.current_thread(), self._clock())

    def active(self) -> bool:
        if not self._runs:              # the common case, without the lock
            return False
        now = self._clock()
        with self._lock:
            for k, (ctx, th, t0) in list(self._runs.items()):
                if now - t0 > CLICK_PRIORITY_S or not th.is_alive() or getattr(ctx, "fragment_ids_this_run", None):
                    del self._runs[k]
            return bool(self._runs)

    def wait(self, abort: Callable[[], bool] = lambda: False) -> None:
        """Wait while a full run is in progress (bounded: each has priority for a short while)."""
        end = self._clock() + CLICK_PRIORITY_S
        while self.active() and not abort() and self._clock() < end:
            time.sleep(0.01)


FULL_RUNS = FullRuns()


class TrainingSlots:
    """How many background training threads of this process may train at once (first come,
    first served, one chunk each time). All of them share one GIL: twenty threads that each want
    to train all the time train no faster than one, but each keeps the GIL away from the thread
    that sends the redraws to the browsers (every socket write waits behind them all), so with a
    class playing, deliveries fell behind, the next redraw dropped them, and pages froze. A waiting
    thread gives up its place as soon as it is held (⏸ Pause, a redraw, a click)."""

    def __init__(self, n: int, yield_to: "FullRuns | None" = None):
        self.n = max(1, int(n))
        self._lock = threading.Lock()
        self._busy = 0
        self._queue: collections.deque = collections.deque()    # events of the waiting threads
        self._yield_to = yield_to       # full runs in progress go first (a click waits for no training)

    def acquire(self, abort: Callable[[], bool]) -> bool:
        with self._lock:
            free = self._busy < self.n and not self._queue
            if free:
                self._busy += 1
            else:
                ev = threading.Event()
                self._queue.append(ev)
        if free:
            return self._got(abort)         # (outside the lock: _got may wait, or release)
        while not ev.wait(0.05):
            if abort():
                with self._lock:
                    if ev.is_set():          # handed over just now: pass it on
                        break
                    self._queue.remove(ev)
                    return False
        return self._got(abort)

    def _got(self, abort: Callable[[], bool]) -> bool:
        """The slot is ours: first let a full run in progress have the GIL, then train."""
        if self._yield_to is not None:
            self._yield_to.wait(abort)
        if abort():
            self.release()
            return False
        return True

    def release(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()  # hand the slot to the next in line (busy stays)
            else:
                self._busy -= 1


TRAIN_SLOTS = TrainingSlots(usable_cores() - 1, yield_to=FULL_RUNS)


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

    def release(self, trainer: Trainer, keep_alive: float | None = None) -> None:
        with self._cond:
            self._trainer = trainer
            self._held = False
            self._until = time.monotonic() + (KEEP_ALIVE if keep_alive is None else keep_alive)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="playground-training", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        import playground

        playground.configure_torch_threads(this_thread=True)
        _name_os_thread("pg-train")     # so `top -H`, py-spy and bench/redraw_cost.py can tell it apart
        while True:
            with self._cond:
                while self._held and time.monotonic() < self._until:
                    self._cond.wait(0.1)
                tr = self._trainer
                if time.monotonic() >= self._until or tr is None or tr.done:
                    self._thread = None
                    return
            if not TRAIN_SLOTS.acquire(lambda: self._held or time.monotonic() >= self._until):
                continue
            try:
                with self._cond:
                    if self._held or self._trainer is not tr:
                        continue
                    self._busy = True
                c0 = time.thread_time()
                try:
                    self.steps += tr.run_for(CHUNK_SECONDS)["steps_done"]
                except Exception as e:  # noqa: BLE001 - shown on the page, never a traceback
                    self.error = f"{type(e).__name__}: {e}"
                    with self._cond:
                        self._until = 0.0
                finally:
                    TRAINING_CPU.add(time.thread_time() - c0)
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
            finally:
                TRAIN_SLOTS.release()


def _name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (Linux ``prctl(PR_SET_NAME)``, at most 15 bytes)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)
    except Exception:  # noqa: BLE001 - only a label
        pass


class BackgroundTraining:
    """A session's background training for one page: in a worker process when the shared
    ``playground.workers`` pool has one ready and the run is small enough to move, else in a
    ``TrainingThread`` of this process. Same calls either way: ``release`` (keep training for
    ``keep_alive`` s), ``hold`` (stop; the run is back here, exactly where it was), ``sync``
    (a redraw: copy the worker's newest snapshot into the mirror)."""

    def __init__(self):
        import uuid

        self.sid = uuid.uuid4().hex
        self.local = TrainingThread()
        self._trainer: Trainer | None = None
        self._remote = False
        self._error: str | None = None

    @staticmethod
    def _pool():
        from playground.workers import shared_pool

        return shared_pool()

    @property
    def remote(self) -> bool:
        return self._remote

    @property
    def active(self) -> bool:
        if self._remote:
            return self._pool().active(self.sid)
        return self.local.active

    @property
    def error(self) -> str | None:
        return self._error or self.local.error

    @error.setter
    def error(self, value) -> None:
        self._error = value
        self.local.error = value

    def hold(self) -> None:
        if self._remote:
            pool = self._pool()
            err = pool.error(self.sid)
            if self._trainer is not None:
                pool.take_back(self.sid, self._trainer)
            self._remote = False
            if err:
                self._error = f"{err} (training went on here from its last snapshot)"
        self.local.hold()

    def stop(self) -> None:
        if self._remote:
            self._pool().drop(self.sid)
            self._remote = False
        self.local.stop()
        self._trainer = None

    def sync(self, trainer: Trainer) -> None:
        """Before a redraw: the newest state of a run that trains in a worker (else a hold)."""
        if self._remote and self._trainer is trainer:
            pool = self._pool()
            pool.sync(self.sid, trainer)
            if not pool.active(self.sid):       # finished, idle or failed: bring it home
                self.hold()
        else:
            self.hold()

    def release(self, trainer: Trainer, keep_alive: float = KEEP_ALIVE) -> None:
        pool = self._pool()
        if self._remote and self._trainer is trainer and pool.active(self.sid):
            pool.keep_alive(self.sid, keep_alive)
            return
        self.hold()
        self._trainer = trainer
        # Only a page's own Trainer moves (not, e.g., the language-model page's fine-tune pair,
        # two trainers in one), and only in a real server (AppTest trains here, as it always did).
        # And only once a second session plays: a lone student's run stays on a thread here, so a
        # browser on the same machine keeps the other core (bench/live_page.py: 4.1 redraws/s on a
        # thread against 2.5-3.0 with a worker, on 2 cores).
        movable = type(trainer) is Trainer and _in_server() and SCHEDULER.playing() >= WORKERS_FROM
        if movable and pool.enabled and pool.start(self.sid, trainer, keep_alive_s=keep_alive):
            self._remote = True
            return

        self.local.release(trainer, keep_alive)


# session id -> the script thread drawing this session's live fragment right now
_DRAWING: dict[str, threading.Thread] = {}


def _drawing(on: bool) -> None:
    ctx = _run_context()
    if ctx is None:
        return
    if on:
        _DRAWING[ctx.session_id] = threading.current_thread()
    elif _DRAWING.get(ctx.session_id) is threading.current_thread():
        _DRAWING.pop(ctx.session_id, None)


def _wait_for_previous_redraw(timeout: float = 1.0) -> None:
    """A click stops the running fragment run and starts a new full run in a new script thread
    (Streamlit's fast reruns); the stopped one ends at its next message, but one it already sent
    on its way could reach the browser after the new run's first elements, at a place the new run
    has changed. So the new run starts drawing once the old redraw has ended (a few ms)."""
    ctx = _run_context()
    th = _DRAWING.get(ctx.session_id) if ctx is not None else None
    end = time.monotonic() + timeout
    while (th is not None and th is not threading.current_thread() and th.is_alive()
           and _DRAWING.get(ctx.session_id) is th and time.monotonic() < end):
        time.sleep(0.005)


def hold_session_training() -> None:
    """Pause every background trainer of this session (called at the start of each full run);
    until the run ends, the process's redraws and training threads let it go first."""
    FULL_RUNS.start()
    _wait_for_previous_redraw()
    for k in list(st.session_state.keys()):
        v = st.session_state.get(k)
        if isinstance(v, (TrainingThread, BackgroundTraining)):
            v.hold()


def warm_workers() -> None:
    """Start the training worker processes early (every page's setup; once per process), so the
    first student who presses Play finds one ready. Only in a real server, not in AppTest."""
    try:
        from playground.workers import shared_pool

        pool = shared_pool()
        if pool.enabled and _in_server():
            pool.warm()
    except Exception:  # noqa: BLE001 - no workers: training stays in this process
        pass


def _in_server() -> bool:
    try:
        from streamlit.runtime import Runtime

        # AppTest installs a MagicMock(spec=Runtime): a real server's runtime is a Runtime itself
        return Runtime.exists() and type(Runtime.instance()) is Runtime
    except Exception:  # noqa: BLE001
        return False


class Scheduler:
    """The process's redraws, shared fairly within a budget of the CPU.

    One redraw draws at a time (see ``_next_in_line``), and redraws *start* at most one per
    ``cost / share`` seconds, so that everything that showing costs (the redraws, Streamlit
    sending them, the clicks and page loads, the timer's requests) takes about ``share`` of one
    core and training gets the rest. ``cost`` is steered, not guessed: over windows of
    ``COST_WINDOW_S``, the process's CPU time that was not training (``showing_cpu``: all threads,
    the sending included) against the share (see ``_measure``; never below the redraw's own CPU).
    So with N sessions playing, each session redraws about every
    ``N × cost / share`` seconds (between ``MIN_PERIOD`` and ``MAX_PERIOD``), the gap grows with the
    class, and the total stays within the budget. A full run in progress (a click) goes first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, cpu: Callable[[], float] = showing_cpu,
                 full_runs: FullRuns | None = None):
        self._clock = clock
        self._cpu = cpu
        self._full_runs = full_runs
        self._cond = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._tickets = itertools.count()
        self._drawn: dict = {}                # session -> when its last redraw started
        self._drawing = False
        self._seen: dict[str, float] = {}
        self._next_start = 0.0                # the budget: no redraw starts before this
        self.cost = 0.05                      # showing CPU seconds per redraw (moving average)
        self.draw_cost = 0.02                 # the redraw's own thread CPU (moving average)
        self.redraws = 0                      # finished redraws (all sessions)
        self._window: tuple | None = None     # (start, showing cpu, redraws) of the current window
        self._share = DRAW_SHARE              # the share of the latest redraw (runs in workers or here)

    def playing(self) -> int:
        now = self._clock()
        horizon = max(3.0, 3 * self._period_for(len(self._seen)))
        with self._cond:
            for k in [k for k, t in self._seen.items() if now - t > horizon]:
                del self._seen[k]
            return max(1, len(self._seen))

    def gap(self, share: float = DRAW_SHARE) -> float:
        """Seconds between the starts of two redraws of the process (any sessions)."""
        return self.cost / share

    def _period_for(self, n: int, share: float = DRAW_SHARE) -> float:
        return min(MAX_PERIOD, max(MIN_PERIOD, n * self.gap(share)))

    def period(self, remote: bool = True) -> float:
        """A playing session's redraw period; ``remote=False``: its run trains in this process,
        so the redraws leave half of the time to training."""
        return self._period_for(self.playing(), DRAW_SHARE if remote else LOCAL_DRAW_SHARE)

    def seen(self, who: str) -> None:
        with self._cond:
            self._seen[who] = self._clock()

    def forget(self, who: str) -> None:
        with self._cond:
            self._seen.pop(who, None)

    def _next_in_line(self):
        """A click's redraw first (▶ Play, ⏸ Pause in the live view); then the waiting redraw whose
        session has waited longest since its last redraw (arrival order among equals): a session
        whose browser asks more often gets no more turns."""
        return min(self._queue, key=lambda t: (not t[2], self._drawn.get(t[0], 0.0), t[1]))

    def acquire(self, abort: Callable[[], bool], timeout: float = 10.0, remote: bool = True,
                budget: bool = True, who: str | None = None, first: bool = False) -> bool:
        """Wait for this redraw's turn (next in line, nobody drawing, the budget's gap since the
        last start, no click in progress); False if ``abort()`` became true (a click is waiting).
        ``who``: the session, for the order (see ``_next_in_line``); ``first``: a click's redraw,
        which goes before the others."""
        share = self._share = DRAW_SHARE if remote else LOCAL_DRAW_SHARE
        deadline = self._clock() + timeout
        with self._cond:
            ticket = (who if who is not None else object(), next(self._tickets), bool(first))
            self._queue.append(ticket)
            first_in_line = None
            try:
                while True:
                    now = self._clock()
                    if abort() or now > deadline:
                        return False
                    if not self._drawing and self._next_in_line() is ticket:
                        first_in_line = first_in_line or now
                        clicked = (self._full_runs is not None and self._full_runs.active()
                                   and now - first_in_line < CLICK_PRIORITY_S)
                        # a session redraws at most every MIN_PERIOD (its browser asks a little early)
                        start = max(self._next_start, self._drawn.get(ticket[0], -MIN_PERIOD) + MIN_PERIOD)
                        if (now >= start or not budget) and not clicked:
                            break
                        wait = 0.01 if clicked else min(0.05, start - now)
                    else:
                        wait = 0.05
                    self._cond.wait(max(0.001, wait))
                self._drawing = True
                self._drawn[ticket[0]] = now
                if len(self._drawn) > 4 * len(self._seen) + 64:     # sessions long gone
                    for k in [k for k, t in self._drawn.items() if now - t > 60.0]:
                        del self._drawn[k]
                if budget:      # every playing session redraws at least every MAX_PERIOD, whatever it costs
                    self._next_start = now + min(self.gap(share), MAX_PERIOD / self.playing())
                return True
            finally:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cond.notify_all()

    def release(self, seconds: float, counted: bool = True) -> None:
        """A redraw finished; ``seconds``: its own thread CPU time; ``counted=False``: a redraw
        outside the budget (while paused), which is not one of the redraws the cost is shared by."""
        with self._cond:
            self._drawing = False
            if counted:
                self.draw_cost = 0.8 * self.draw_cost + 0.2 * min(seconds, 1.0)
                self.redraws += 1
                self._measure()
            self._cond.notify_all()

    def _measure(self) -> None:
        """Every ``COST_WINDOW_S``: steer ``cost`` so that showing takes its share of a core. The
        showing CPU of the window, as a part of a core, against the share: over it, ``cost`` (and so
        every gap and period) grows; under it, it shrinks, never below the redraw's own CPU. (Not
        the window's CPU per redraw itself: much of what showing costs is fixed per second, the
        timers, the sockets, the waiting threads, so that ratio is higher the fewer redraws there
        are: a slow window read as an expensive one and the server settled at half its rate.)"""
        now, cpu = self._clock(), self._cpu()
        if self._window is None:
            self._window = (now, cpu, self.redraws)
            return
        t0, c0, r0 = self._window
        if now - t0 < COST_WINDOW_S:
            return
        n = self.redraws - r0
        if n > 0 and now - t0 <= max(4 * COST_WINDOW_S, 2 * MAX_PERIOD):   # (longer: nobody was playing)
            used = (cpu - c0) / (now - t0)              # of one core
            step = min(COST_STEP, max(1 / COST_STEP, (used / self._share) ** 0.5))
            self.cost = min(MAX_COST, max(self.draw_cost, self.cost * step))
        self._window = (now, cpu, self.redraws)


SCHEDULER = Scheduler(full_runs=FULL_RUNS)

# Trainers of this process -> when a session last used them (a redraw, a full run).
_LAST_USED: "weakref.WeakKeyDictionary[Trainer, float]" = weakref.WeakKeyDictionary()
_janitor = {"last": 0.0}


def touch(trainer: Trainer) -> None:
    _LAST_USED[trainer] = time.monotonic()


def release_idle(now: float | None = None, idle_s: float | None = None) -> int:
    """Runs that nobody played or looked at for ``idle_s`` (default ``IDLE_RELEASE_S``) give back
    their memory (``Trainer.release_memory``); the session rebuilds the run when it comes back.
    Returns how many were released. Cheap; runs at most every 30 s from any session's full run."""
    now = time.monotonic() if now is None else now
    idle_s = IDLE_RELEASE_S if idle_s is None else idle_s
    released = 0
    for tr, last in list(_LAST_USED.items()):
        if now - last >= idle_s and tr.released is None:
            tr.release_memory()
            released += 1
    return released


def _fragment_rerun() -> bool:
    """True inside a rerun of fragments only (not a full script run)."""
    ctx = _run_context()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def _run_context():
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        return get_script_run_ctx()
    except Exception:  # noqa: BLE001
        return None


def _click_waiting() -> bool:
    """True when this session has a full rerun waiting (a click, a changed widget) or is
    stopping: the fragment should finish now instead of pacing."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_requests import (ScriptRequestType,
                                                                         _fragment_run_should_not_preempt_script)

        req = _run_context().script_requests
        state = req._state
        if state == ScriptRequestType.STOP:
            return True
        if state != ScriptRequestType.RERUN:
            return False
        data = req._rerun_data
        return (not _fragment_run_should_not_preempt_script(data.fragment_id_queue, data.is_fragment_scoped_rerun)
                or _is_click(data))
    except Exception:  # noqa: BLE001 - unknown Streamlit internals: never pace
        return True


def _is_click(data) -> bool:
    """A pending rerun that a person asked for (a button in a fragment, ▶ Play or ⏸ Pause in the
    live view), not the fragment's timer: a trigger value among its widget states, or not an
    auto-rerun. (Timer ticks folded into it keep its trigger: Streamlit coalesces them.)"""
    if not getattr(data, "is_auto_rerun", True):
        return True
    ws = getattr(data, "widget_states", None)
    return bool(ws is not None and any(w.WhichOneof("value") == "trigger_value" and w.trigger_value
                                       for w in ws.widgets))


def _yield_to_click() -> None:
    """End this fragment run now in favour of the pending rerun (a click), the way Streamlit
    itself ends a run for a newer one: ``RerunException`` with the pending request. The browser
    then keeps what it shows (the run "finished early for a rerun") until the click's run redraws
    it, instead of clearing the fragment's elements for a run that drew nothing. A fragment's own
    click does not stop a fragment run by itself (Streamlit lets fragment reruns queue), and the
    scheduler's queue would have it wait its turn behind the class."""
    try:
        from dataclasses import replace

        from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
        from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

        req = _run_context().script_requests
        with req._lock:
            if req._state != ScriptRequestType.RERUN:
                return
            data = req._rerun_data
            req._state = ScriptRequestType.CONTINUE
            req._rerun_data = replace(data, replay_trigger_values=None)
    except Exception:  # noqa: BLE001 - unknown Streamlit internals: the run just ends
        return
    raise RerunException(data)


def _wait_delivered(deadline: float) -> None:
    """Wait (GIL released) until this session's queued deltas have left for the browser, so
    the next fragment run cannot drop them."""
    try:
        from streamlit.runtime import Runtime

        info = Runtime.instance()._session_mgr.get_active_session_info(_run_context().session_id)
        queue = info.session._browser_queue
        while time.monotonic() < deadline and any(m.WhichOneof("type") in ("delta", "auto_rerun")
                                                  for m in list(queue._queue)):
            if _click_waiting():
                return
            time.sleep(0.005)
    except Exception:  # noqa: BLE001 - unknown Streamlit internals: rely on pacing alone
        return


def _sleep_until(deadline: float) -> None:
    while time.monotonic() < deadline and not _click_waiting():
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))


def _fragment_id() -> str | None:
    """The id of the fragment running in this thread (None outside a fragment)."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

        return ThreadState.get().fragment_id
    except Exception:  # noqa: BLE001 - unknown Streamlit internals
        return None


def browser_interval(period: float, spent: float, last: float | None, lag: float = 0.0) -> float:
    """The browser timer's next interval for a session whose redraws should start every ``period``
    seconds, when this redraw took ``spent`` to draw and the way to the browser and back (sending,
    rendering, the next request) takes ``lag``: the rest of the period (at least ``MIN_INTERVAL``),
    in 10 ms steps. The browser asks a little early (``BROWSER_EAGER`` of the period), so that the
    server's turns, not the browsers, set the pace, and at most ``BROWSER_MAX_INTERVAL`` later. (The
    redraw's wait for its turn is not subtracted: the browser's timer repeats, and one shorter than
    the wait would ask again and again meanwhile.) Never the same value as
    ``last``: the frontend restarts its timer only when the interval changes, and a restart on
    every delivered redraw is what makes the browser ask for the next one only after this one has
    arrived."""
    interval = round(min(BROWSER_MAX_INTERVAL, max(MIN_INTERVAL, BROWSER_EAGER * period - spent - lag)), 2)
    if last is not None and abs(interval - last) < 1e-6:
        interval = round(interval + 0.001, 3)
    return interval


def _retime_browser(fragment_id: str, interval: float) -> None:
    """Send the browser this fragment's new timer interval (Streamlit's ``auto_rerun`` message,
    the one ``st.fragment(run_every=...)`` sends; the frontend replaces a timer whose interval
    changed and starts counting from when the message arrived)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.auto_rerun.interval = interval
    msg.auto_rerun.fragment_id = fragment_id
    _run_context().enqueue(msg)


def _stop_browser_timer(fragment_id: str) -> None:
    """Stop the browser's timer for this fragment (Streamlit's ``stop_auto_rerun`` message)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    msg.stop_auto_rerun.fragment_ids.append(fragment_id)
    _run_context().enqueue(msg)


class _Steady:
    """A trainer seen as it was at one moment: ``history`` and ``epoch`` frozen, every other
    attribute the trainer's own (see ``LiveTraining.steady``)."""

    def __init__(self, trainer: Trainer):
        object.__setattr__(self, "_trainer", trainer)
        object.__setattr__(self, "history", list(trainer.history))
        object.__setattr__(self, "epoch", trainer.epoch)

    def __getattr__(self, name):
        return getattr(self._trainer, name)

    def __setattr__(self, name, value):
        setattr(self._trainer, name, value)


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
    def thread(self) -> BackgroundTraining:
        ss = st.session_state
        if not isinstance(ss.get(self._wk), BackgroundTraining):
            ss[self._wk] = BackgroundTraining()
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
        now = time.monotonic()
        if now - _janitor["last"] > 30.0:
            _janitor["last"] = now
            release_idle(now)
        old = ss.get(self._tk)
        if old is None or ss.get(self._sk) != signature or old.released:
            self.thread.stop()
            ss[self._tk] = factory()
            ss[self._sk] = signature
            ss[self._pk] = False
            if old is not None and old.released and ss.get(self._sk) == signature:
                st.info(f"This run was left idle for {IDLE_RELEASE_S / 60:.0f} minutes, so it gave its memory back "
                        "to the server for the other students. It starts again from the same seed: press ▶ Play.",
                        icon="💤")
        touch(ss[self._tk])
        if run_info is not None:
            from playground.ui.runs import track

            track(self.key, ss[self._tk], **run_info)
        return ss[self._tk]

    def reset(self) -> None:
        self.thread.stop()
        st.session_state[self._sk] = None
        st.session_state[self._pk] = False
        self._clicked()

    @property
    def _ck(self):
        return f"{self.key}._click"

    def _clicked(self):
        """A control was pressed: this run is a person's, not the timer's (see ``run``)."""
        st.session_state[self._ck] = True

    def companion(self, interval: float) -> None:
        """Called inside another fragment that redraws every ``interval`` s while this run plays
        (a lesson's checks in the sidebar). With the controls in the live view (``run``), ▶ and ⏸
        do not rerun the page, so that fragment's timer would stay as the last full run set it:
        the live view's clicks start it (▶) or give it one last redraw (⏸), in which it stops
        its own timer here."""
        fid = _fragment_id()
        if not fid or not _in_server():
            return
        follows = st.session_state.setdefault(f"{self.key}._companions", {})
        follows.pop(fid, None)
        follows[fid] = float(interval)
        while len(follows) > 4:                 # fragments of earlier layouts
            follows.pop(next(iter(follows)))
        if _fragment_rerun() and not self.playing:
            _stop_browser_timer(fid)

    def _retime_companions(self) -> None:
        for fid, interval in list(st.session_state.get(f"{self.key}._companions", {}).items()):
            _retime_browser(fid, interval if self.playing else MIN_INTERVAL)

    def _play(self):
        tr = self.trainer
        self.set_playing(not (tr is not None and tr.done))
        self._clicked()

    def _pause(self):
        self.thread.hold()
        SCHEDULER.forget(self.thread.sid)
        self.set_playing(False)
        self._clicked()

    def _step(self):
        self._clicked()
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

    def _stamp(self, depends=()) -> tuple:
        """What a view of the run shows, as far as the run goes: which trainer, how far it has
        trained (and what else the view ``depends`` on)."""
        tr = self.trainer
        return (id(tr), getattr(tr, "steps", None), getattr(tr, "epoch", None),
                len(getattr(tr, "history", ()) or ()), depends)

    def throttle(self, name: str, build: Callable[[], object], seconds: float = 0.5, depends=()):
        """While playing, rebuild an expensive figure at most every ``seconds`` and reuse the
        last one in between (a redraw then costs almost nothing). When paused, fresh: rebuilt
        unless the run has not moved since it was built (same trainer, steps and epoch, and the
        same ``depends``, for what else the figure shows), as on ▶ Play or a display toggle."""
        slot = f"{self.key}._cache.{name}"
        now = time.perf_counter()
        seconds = max(seconds, 2 * SCHEDULER.period())     # a busy server refreshes them less often
        cached = st.session_state.get(slot)
        stamp = self._stamp(depends)
        if cached is not None and ((self.playing and now - cached[0] < seconds)
                                   or (not self.playing and len(cached) > 2 and cached[2] == stamp)):
            return cached[1]
        value = build()
        st.session_state[slot] = (now, value, stamp)
        return value

    def memo(self, name: str, key, build: Callable[[], object]):
        """``build()`` once per ``key`` (a run's exported script, per run and epoch): the page's
        full runs (▶ Play, ⏸ Pause, a toggle) then skip work whose inputs did not change."""
        slot = f"{self.key}._memo.{name}"
        cached = st.session_state.get(slot)
        if cached is not None and cached[0] == key:
            return cached[1]
        value = build()
        st.session_state[slot] = (key, value)
        return value

    def steady(self, trainer: Trainer, name: str, seconds: float = 1.0):
        """While playing, ``trainer`` as it was at most ``seconds`` ago (longer on a busy server), for
        views that redo their work whenever the run has a new epoch (the training doctor diagnoses
        once per epoch: while playing, that was every redraw, a third of its CPU). It is a stand-in
        whose ``history`` and ``epoch`` stay as they were when it was made and whose other
        attributes are the trainer's own, read live; a new one every ``seconds``. When paused:
        ``trainer`` itself."""
        slot = f"{self.key}._cache.steady.{name}"
        if not self.playing:
            st.session_state.pop(slot, None)        # holds a trainer: never kept while paused
            return trainer
        got = self.throttle(f"steady.{name}", lambda: _Steady(trainer), seconds)
        if got._trainer is not trainer:             # a new run since
            got = _Steady(trainer)
            st.session_state[slot] = (time.perf_counter(), got)
        return got

    def run(self, draw: Callable[[Trainer], None], budget: float = TRAIN_BUDGET, interval: float = TICK_SECONDS,
            controls: str | None = None, after: Callable[[Trainer], None] | None = None):
        """Draw (and keep training while playing) inside a fragment that reruns while playing.
        In a browser, each fragment-only rerun takes its turn in the process's ``SCHEDULER``,
        draws, waits for its messages to leave, and tells the browser when to ask again.

        ``controls`` (the Step button's label): ▶ Play / ⏸ Pause / Step / Reset at the top of the
        live view, inside the fragment, instead of ``controls()`` elsewhere on the page. A click
        then reruns the live view only (a redraw, ~30 messages), not the whole page (~160): on a
        server shared by a class, whose pauses come in bursts, that is what keeps ⏸ Pause within
        a second (bench/load.py). The click's redraw goes first in the scheduler, stops or starts
        the browser's timer itself, and a waiting timer redraw of the session gives way to it.
        ``after(trainer)``: drawn below ``draw`` in the same fragment (what a page shows only
        when paused, such as its test-set panel, so that it comes and goes with ⏸ / ▶ too)."""
        playing = self.playing
        if playing and _in_server() and not _fragment_rerun():
            # the first tick after a full run (▶ Play, a setting): the session's share on a busy
            # server, not 20 requests a second until the first redraw retimes the browser
            interval = max(interval, browser_interval(SCHEDULER.period(remote=self.thread.remote), 0.0, None))

        @st.fragment(run_every=interval if playing else None)
        def _live():
            tr = self.trainer
            if tr is None:
                return
            worker = self.thread
            fragment_only = _fragment_rerun()       # a browser's redraw, not a full run of the page
            ss = st.session_state
            clicked = bool(ss.pop(self._ck, False)) and fragment_only     # ▶ / ⏸ / Step in this fragment
            if clicked and ss.get(self._sk) is None:
                st.rerun(scope="app")               # ↺ Reset: the page builds its run again
            paced = self.playing and fragment_only
            t0 = time.monotonic()
            if paced:
                SCHEDULER.seen(worker.sid)
            if fragment_only:           # every redraw takes its turn; a playing one within the budget
                if not SCHEDULER.acquire(_click_waiting, remote=worker.remote, budget=paced, who=worker.sid,
                                         first=clicked):
                    _yield_to_click()   # a click is waiting: its run goes first (a full one, or this fragment's)
                    return
            if controls is not None:
                self.controls(controls)
            waited = time.monotonic() - t0
            t_draw = time.thread_time()     # the redraw's own CPU time (not its waits for the GIL)
            touch(tr)
            if fragment_only:
                _drawing(True)
            try:
                background = worker.active
                worker.sync(tr)
                if worker.error:
                    st.error(f"Training stopped: {worker.error}", icon="💥")
                    worker.error = None
                    self.set_playing(False)
                # No background training yet (the first redraw after Play; AppTest, which has no browser
                # timer): train a little here. Not on a busy server, where this would hold the one
                # drawing turn of the class (nor in a server's full run: Play stays cheap).
                inline = not _in_server() or (fragment_only and SCHEDULER.playing() <= 1)
                if self.playing and not tr.done and not background and inline:
                    c0 = time.thread_time()
                    tr.run_for(budget)
                    TRAINING_CPU.add(time.thread_time() - c0)
                    t_draw += time.thread_time() - c0
                if self.playing and tr.done:
                    self.set_playing(False)
                    st.rerun()  # full rerun: stops the timer and updates the buttons
                period = SCHEDULER.period(remote=worker.remote)
                # One slot for the note in every run of the fragment, shown or not: the elements
                # below keep their places in the page (a note that came and went moved them, and
                # the next full run's charts then landed where the browser had the note).
                note = st.empty()
                if paced and period >= BUSY_PERIOD:
                    note.caption(f"🧑‍🏫 {SCHEDULER.playing()} students are training on this server: your charts "
                               f"redraw about every {period:.1f} s so everyone gets a fair share. "
                               "Training goes on in between.")
                draw(tr)
                if after is not None:
                    after(tr)
            finally:
                if fragment_only:
                    _drawing(False)
                    SCHEDULER.release(time.thread_time() - t_draw, counted=paced)
            if clicked and _in_server():
                self._retime_companions()
            if fragment_only and not self.playing and controls is not None and _in_server():
                fid = _fragment_id()
                if fid:     # paused here (not by a full run, which clears the browser's timers itself)
                    _stop_browser_timer(fid)
                    st.session_state.pop(f"{self.key}._browser", None)
            if paced and self.playing and not tr.done:
                # train while the browser renders, and until the next turn (the wait for it included)
                worker.release(tr, keep_alive=KEEP_ALIVE + 2 * (period + waited))
                fid = _fragment_id() if _in_server() else None
                if fid:
                    # The browser waits out the rest of the period itself, counted from when this
                    # redraw arrives: no request comes before it is delivered, and no script thread
                    # of the class sits sleeping on the server.
                    ss = st.session_state
                    slot = f"{self.key}._browser"
                    last = ss.get(slot)         # (interval sent, when that redraw ended, lag estimate)
                    lag = 0.0
                    if last is not None:
                        seen = t0 - last[1] - last[0]   # this request came this long after the timer's due time
                        lag = last[2] if not 0.0 <= seen < 2.0 else 0.7 * last[2] + 0.3 * seen
                    interval = browser_interval(period, time.monotonic() - t0 - waited,
                                                last[0] if last else None, lag)
                    _retime_browser(fid, interval)
                    _wait_delivered(time.monotonic() + DELIVERY_WAIT)
                    ss[slot] = (interval, time.monotonic(), lag)
                else:
                    _wait_delivered(time.monotonic() + DELIVERY_WAIT)
                    _sleep_until(t0 + period)

        _live()
        if not _fragment_rerun() and _in_server():
            # A full run (▶ Play, ⏸ Pause, a setting) ends with the browser's timer tick usually
            # waiting, and Streamlit starts that fragment run at once; its start clears the queue of
            # the fragment's messages not sent yet, the full run's own included. Then the browser
            # had the fragment's charts without the container they live in ("Bad delta path
            # index", bench/load.py at 20 and 30 students). So the full run lets them leave first.
            _wait_delivered(time.monotonic() + FULL_RUN_DELIVERY_WAIT)
