"""Training worker processes: live training that uses the machine's other cores.

One Streamlit process runs every student's script under one GIL, so however many students
play, the server used about one core. A ``TrainingPool`` starts a few worker processes (one
per spare core) that hold the playing sessions' trainers and train them round-robin, a short
time slice each (so every playing session gets a fair share), while the app process only draws.

    pool = TrainingPool(workers=1)
    pool.start("session-1", trainer)          # the run moves to a worker and trains there
    pool.keep_alive("session-1")              # each redraw: keep training, send me a snapshot
    pool.sync("session-1", trainer)           # copy the newest snapshot into the local trainer
    pool.take_back("session-1", trainer)      # stop, and continue exactly here (in place)

The local trainer is a *mirror* while its run is in a worker: ``sync`` copies the worker's
weights, counters and history into it (what the page draws); ``take_back`` imports the whole
state (optimizer, position in the epoch, shuffling generator), so training continues exactly as
if it had never left. Seeded runs give the same history either way (tests/test_workers.py).
A worker stops training a run when no ``keep_alive`` came for ``keep_alive_s`` seconds and sends
the run back. Workers are plain ``python -m playground.workers`` child processes talking over a
socket pair; a dead worker's runs report an error and stay usable where they were last synced.
Never imports streamlit.
"""
from __future__ import annotations

import io
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import torch

CHUNK_SECONDS = 0.01        # a worker trains each run this long before moving to the next one
SNAPSHOT_MIN_S = 0.03       # at most this often per run, and only when the app asked for one
KEEP_ALIVE_S = 1.5          # a run stops (and is sent back) after this long without keep_alive
MAX_STATE_MB = 64           # larger runs (data included) train in the app process instead
WORKER_NICENESS = 5         # workers run below the app process (os.nice): showing first, training with the rest


_NUMPY_DTYPES = {torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.int16, torch.int8,
                 torch.uint8, torch.bool}


def _tensor_from(array, dtype: str):
    return torch.from_numpy(array) if dtype == "" else torch.from_numpy(array).view(getattr(torch, dtype))


class _Pickler(pickle.Pickler):
    """Plain CPU tensors travel as numpy arrays (pickle's out-of-the-box path for a tensor is
    ``torch.save`` of its storage, which made the snapshot of a tiny MLP cost a millisecond per
    redraw to read back). Parameters, tensors that need gradients and anything else keep
    torch's own reduction. Values, dtypes and shapes arrive unchanged (each tensor its own copy)."""

    def reducer_override(self, obj):
        if type(obj) is torch.Tensor and obj.layout == torch.strided and obj.device.type == "cpu" \
                and not obj.requires_grad:
            # by its importable name (a worker runs this module as __main__)
            from playground.workers import _tensor_from as rebuild

            if obj.dtype in _NUMPY_DTYPES:
                return rebuild, (obj.detach().numpy(), "")
            if obj.dtype == torch.bfloat16:
                return rebuild, (obj.detach().contiguous().view(torch.int16).numpy(), "bfloat16")
        return NotImplemented


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=5).dump(obj)
    return buf.getvalue()


def _loads(data: bytes):
    # Only ever bytes this module wrote, between processes of this app (never a user's file).
    return pickle.loads(data)


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """Cores this process may use: the CPUs it may run on, and no more than a container's CPU
    quota (``docker run --cpus 1`` leaves every host CPU visible to ``os.cpu_count()`` but lets the
    container use one)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        with open(cpu_max) as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(-(-int(quota) // int(period)))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def default_workers() -> int:
    """Worker processes to use: ``PLAYGROUND_TRAIN_WORKERS`` (default ``auto`` = one per core
    beyond the first, at most 4: none on one core; ``0`` = always train in the app process). Each
    worker is another process with torch loaded (~300 MB); in exchange the app process's one GIL
    is left to showing, which is what lets a class of 20 share the 2-core machine
    (README, "A class on one server")."""
    env = os.environ.get("PLAYGROUND_TRAIN_WORKERS", "auto").strip().lower() or "auto"
    if env == "auto":
        return max(0, min(4, usable_cores() - 1))
    try:
        return max(0, int(env))
    except ValueError:
        return 0


# ------------------------------------------------------------------------------------------------
# the worker process
@dataclass
class _Run:
    trainer: object
    rng: torch.Tensor
    until: float
    max_steps: int | None
    want: bool = True
    sent_history: int = 0
    last_snap: float = 0.0


def _snapshot(run: _Run) -> dict:
    tr = run.trainer
    snap = {"model": {k: v.detach().clone() for k, v in tr.model.state_dict().items()},
            "epoch": tr.epoch, "steps": tr.steps, "optimizer_steps": tr.optimizer_steps, "seconds": tr.seconds,
            "history_from": run.sent_history, "history": tr.history[run.sent_history:],
            "diverged": tr.diverged, "stopped": tr.stopped,
            # what the page draws beside the numbers: the same moment's validation outputs, the best
            # epoch, the schedule's rate, the position in the epoch and the sub-epoch loss trace
            "best_epoch": tr.best_epoch, "val_outputs": tr.val_outputs, "_lr_scale": tr._lr_scale,
            "_cursor": tr._cursor, "trace": list(tr.trace)}
    run.sent_history = len(tr.history)
    return snap


def _final(run: _Run) -> dict:
    state = run.trainer.export_state()
    state["_torch_rng"] = run.rng
    return state


def worker_main(fd: int) -> None:
    """The worker's loop: take runs, train them round-robin, send snapshots and finished runs."""
    import playground  # noqa: F401 - one torch thread

    playground.configure_torch_threads(this_thread=True)
    try:
        # Below the app process: its showing (redraws, clicks, page loads) goes first and the
        # training takes every cycle left over, so a busy core slows training, never a Pause.
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    conn = Connection(fd)
    runs: dict[str, _Run] = {}
    order: list[str] = []

    def send(msg) -> None:
        conn.send_bytes(pickle.dumps(msg, protocol=5))

    def give_back(sid: str, why: str) -> None:
        run = runs.pop(sid, None)
        if sid in order:
            order.remove(sid)
        if run is not None:
            send(("state", sid, _dumps(_final(run)), why))

    try:
        send(("ready", ""))
        _serve(conn, runs, order, send, give_back)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return                          # the app process went away: nothing left to train for


def _serve(conn, runs, order, send, give_back) -> None:
    from playground.train import Trainer

    while True:
        timeout = 0.0 if runs else 1.0
        while conn.poll(timeout):
            timeout = 0.0
            try:
                msg = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            kind, sid = msg[0], msg[1]
            if kind == "start":
                _, _, blob, keep_alive, max_steps = msg
                state = _loads(blob)
                rng = state.pop("_torch_rng", torch.get_rng_state())
                tr = Trainer.from_state(state)
                runs[sid] = _Run(tr, rng, time.monotonic() + keep_alive, max_steps, sent_history=len(tr.history))
                if sid not in order:
                    order.append(sid)
            elif kind == "alive" and sid in runs:
                runs[sid].until = time.monotonic() + msg[2]
                runs[sid].want = True
            elif kind == "stop":
                if sid in runs:
                    give_back(sid, "stopped")
                else:
                    send(("gone", sid))
            elif kind == "quit":
                return
        now = time.monotonic()
        for sid in list(order):
            run = runs[sid]
            tr = run.trainer
            if now >= run.until:
                give_back(sid, "idle")
                continue
            cap = None if run.max_steps is None else run.max_steps - tr.steps
            if cap is not None and cap <= 0 or tr.done:
                give_back(sid, "done")
                continue
            torch.set_rng_state(run.rng)
            try:
                tr.run_for(CHUNK_SECONDS, max_steps=cap)
            except Exception as e:  # noqa: BLE001 - reported to the page, never a traceback
                run.rng = torch.get_rng_state()
                runs.pop(sid)
                order.remove(sid)
                send(("error", sid, f"{type(e).__name__}: {e}"))
                continue
            run.rng = torch.get_rng_state()
            if run.want and time.monotonic() - run.last_snap >= SNAPSHOT_MIN_S:
                run.want = False
                run.last_snap = time.monotonic()
                send(("snap", sid, _dumps(_snapshot(run))))
            if tr.done or (run.max_steps is not None and tr.steps >= run.max_steps):
                give_back(sid, "done")


def run_mb(trainer) -> float:
    """About how many MB a run is to move (its data, weights and optimizer state)."""
    d = trainer.data
    data = sum(t.numel() * t.element_size() for t in (d.x_train, d.y_train, d.x_val, d.y_val, d.x_test, d.y_test))
    params = sum(p.numel() * p.element_size() for p in trainer.model.parameters())
    return (data + 3 * params) / 1e6


# ------------------------------------------------------------------------------------------------
# the app side
@dataclass
class _Mailbox:
    worker: "_Worker"
    snap: dict | None = None
    state: dict | None = None
    error: str | None = None
    returned: threading.Event = field(default_factory=threading.Event)
    active: bool = True


class _Worker:
    def __init__(self, pool: "TrainingPool", index: int):
        parent, child = socket.socketpair()
        env = {**os.environ, "PLAYGROUND_NUM_THREADS": os.environ.get("PLAYGROUND_NUM_THREADS", "1")}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "playground.workers", str(child.fileno())],
                                     pass_fds=(child.fileno(),), env=env, cwd=root,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        child.close()
        self._sock = parent
        self.conn = Connection(os.dup(parent.fileno()))
        parent.close()
        self.pool = pool
        self.index = index
        self.runs: set[str] = set()
        self._send_lock = threading.Lock()
        self.alive = True
        self.ready = threading.Event()     # set when the child has imported torch and listens
        self.reader = threading.Thread(target=self._read, name=f"playground-worker-{index}-reader", daemon=True)
        self.reader.start()

    def send(self, msg) -> bool:
        data = pickle.dumps(msg, protocol=5)
        with self._send_lock:
            if not self.alive:
                return False
            try:
                self.conn.send_bytes(data)
                return True
            except OSError:
                self.alive = False
                return False

    def _read(self) -> None:
        while True:
            try:
                msg = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                break
            if msg[0] == "ready":
                self.ready.set()
                continue
            self.pool._deliver(self, msg)
        self.alive = False
        self.pool._worker_died(self)


class TrainingPool:
    """Worker processes that train the app's playing runs (see the module docstring)."""

    def __init__(self, workers: int | None = None, keep_alive_s: float = KEEP_ALIVE_S):
        self.n_workers = default_workers() if workers is None else int(workers)
        self.keep_alive_s = keep_alive_s
        self._workers: list[_Worker] = []
        self._boxes: dict[str, _Mailbox] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    @property
    def enabled(self) -> bool:
        return self.n_workers > 0

    def warm(self) -> None:
        """Start the worker processes now (each takes a few seconds to import torch), so the
        first student who presses Play finds one ready."""
        if len(self._workers) >= self.n_workers and all(w.alive for w in self._workers):
            return
        with self._lock:
            self._workers = [w for w in self._workers if w.alive]
            while len(self._workers) < self.n_workers:
                self._workers.append(_Worker(self, next(self._ids)))

    def _pick_worker(self) -> _Worker | None:
        ready = [w for w in self._workers if w.alive and w.ready.is_set()]
        return min(ready, key=lambda w: len(w.runs)) if ready else None

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Start the workers and wait until one is ready (tests, benchmarks, the CLI)."""
        self.warm()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(w.ready.is_set() for w in self._workers if w.alive):
                return True
            time.sleep(0.05)
        return False

    # -- a run's life -------------------------------------------------------------------------
    def start(self, sid: str, trainer, max_steps: int | None = None, keep_alive_s: float | None = None) -> bool:
        """Move ``trainer``'s run to a worker (False: it stays here — too big, no workers)."""
        if not self.enabled:
            return False
        self.warm()
        with self._lock:
            if sid in self._boxes and self._boxes[sid].active:
                raise RuntimeError(f"run {sid} is already training in a worker")
            w = self._pick_worker()
        if w is None or run_mb(trainer) > MAX_STATE_MB:   # still starting, or too big to move
            return False
        state = trainer.export_state(with_data=True)
        state["_torch_rng"] = torch.get_rng_state()
        blob = _dumps(state)
        if len(blob) > MAX_STATE_MB * 1e6:
            return False
        with self._lock:
            box = _Mailbox(w)
            self._boxes[sid] = box
            w.runs.add(sid)
        ka = self.keep_alive_s if keep_alive_s is None else float(keep_alive_s)
        if not w.send(("start", sid, blob, ka, max_steps)):
            with self._lock:
                box.active = False
                w.runs.discard(sid)
            return False
        return True

    def active(self, sid: str) -> bool:
        box = self._boxes.get(sid)
        return box is not None and box.active

    def keep_alive(self, sid: str, seconds: float | None = None) -> None:
        """Keep training ``sid`` for another ``seconds`` (default ``keep_alive_s``) and ask for a
        fresh snapshot."""
        box = self._boxes.get(sid)
        if box is not None and box.active:
            box.worker.send(("alive", sid, self.keep_alive_s if seconds is None else float(seconds)))

    def sync(self, sid: str, trainer) -> bool:
        """Copy the newest snapshot of ``sid`` into ``trainer`` (weights, counters, history).
        True when something new arrived."""
        box = self._boxes.get(sid)
        if box is None:
            return False
        with self._lock:
            snap, box.snap = box.snap, None
        if snap is None:
            return False
        _apply_snapshot(trainer, snap)
        return True

    def take_back(self, sid: str, trainer, timeout: float = 5.0) -> bool:
        """Stop ``sid`` in its worker and import its whole state into ``trainer`` in place.
        Returns False (and leaves ``trainer`` as last synced) if the worker could not answer."""
        box = self._boxes.get(sid)
        if box is None:
            return False
        if box.active and box.state is None and box.error is None:
            box.worker.send(("stop", sid))
            box.returned.wait(timeout)
        with self._lock:
            self._boxes.pop(sid, None)
            box.worker.runs.discard(sid)
            state, box.state = box.state, None
        if state is None:                  # no answer: keep what the last snapshot said
            if box.snap is not None:
                _apply_snapshot(trainer, box.snap)
            return False
        rng = state.pop("_torch_rng", None)
        trainer.import_state(state)
        if rng is not None:
            torch.set_rng_state(rng)
        return True

    def error(self, sid: str) -> str | None:
        box = self._boxes.get(sid)
        return None if box is None else box.error

    def drop(self, sid: str) -> None:
        """Forget ``sid`` (its run is no longer wanted): the worker stops it."""
        box = self._boxes.pop(sid, None)
        if box is not None and box.active:
            box.worker.send(("stop", sid))
            box.worker.runs.discard(sid)

    def close(self) -> None:
        for w in self._workers:
            w.send(("quit", ""))
        for w in self._workers:
            try:
                w.proc.wait(3)
            except subprocess.TimeoutExpired:
                w.proc.kill()
        self._workers = []

    # -- called by the readers ------------------------------------------------------------------
    def _deliver(self, worker: _Worker, msg) -> None:
        kind, sid = msg[0], msg[1]
        box = self._boxes.get(sid)
        if box is None or box.worker is not worker:
            return
        if kind == "snap":
            snap = _loads(msg[2])
            with self._lock:
                if box.snap is not None:      # keep every history record of a skipped snapshot
                    old = box.snap
                    snap["history"] = old["history"] + snap["history"]
                    snap["history_from"] = old["history_from"]
                box.snap = snap
        elif kind == "state":
            with self._lock:
                box.state = _loads(msg[2])
                box.active = False
                worker.runs.discard(sid)
            box.returned.set()
        elif kind == "gone":
            with self._lock:
                box.active = False
            box.returned.set()
        elif kind == "error":
            with self._lock:
                box.error = msg[2]
                box.active = False
                worker.runs.discard(sid)
            box.returned.set()

    def _worker_died(self, worker: _Worker) -> None:
        with self._lock:
            for sid, box in self._boxes.items():
                if box.worker is worker and box.active:
                    box.active = False
                    box.error = box.error or "the training worker process stopped"
                    box.returned.set()


def _apply_snapshot(trainer, snap: dict) -> None:
    trainer.model.load_state_dict(snap["model"])
    for k in ("epoch", "steps", "optimizer_steps", "seconds", "diverged", "stopped", "best_epoch", "val_outputs",
              "_lr_scale", "_cursor", "trace"):
        if k in snap:
            setattr(trainer, k, snap[k])
    trainer._apply_lr()
    del trainer.history[snap["history_from"]:]
    trainer.history.extend(snap["history"])


_POOL: TrainingPool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> TrainingPool:
    """The process's pool (created on first use; ``PLAYGROUND_TRAIN_WORKERS`` sets its size)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = TrainingPool()
        return _POOL


if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
