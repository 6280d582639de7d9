"""What one student costs the server's main process, in CPU time: a page load, ▶ Play, one live
redraw, ⏸ Pause, and a second of sitting paused, on the Basics page (the page ``bench/load.py``
drives), next to the same figures for a bare Streamlit script.

    python bench/redraw_cost.py                   # app + bare reference, ~1-2 min
    python bench/redraw_cost.py --no-reference --cycles 5
    python bench/redraw_cost.py --root /tmp/old-checkout     # the same page from another tree

Why CPU and not redraws/s: every session of one ``streamlit run`` shares one GIL, so what a class
gets is about (one core) / (CPU per redraw); and on a shared machine wall-clock rates say more
about the neighbours than about the page. CPU seconds come from ``/proc/<pid>/stat`` (all the
server's threads, dead ones included) minus the CPU of the live-training threads
(``/proc/<pid>/task/*/comm`` = ``pg-train``: training is what the student asked for, not the cost
of showing it; worker processes are other pids and not counted either). The server's idle CPU per
second, measured first, is subtracted from every figure.

One simulated tab (``bench/streamlit_client.py``: Streamlit's own websocket protocol, the 50 ms
fragment timer, the default render model) does, after a warm-up tab:
  page load   open the page until "▶ Play" and the "Steps" metric show, then 0.5 s to settle;
              the mean over ``--loads`` fresh tabs;
  play        press ▶ Play, until the run that shows "⏸ Pause" has finished (read at that
              moment, so the redraws that follow are not counted);
  redraw      play ``--seconds``: CPU / delivered redraws (fragment runs that finished with a new
              Steps value), the mean of ``--cycles`` windows;
  pause       press ⏸ Pause, until the run that shows "▶ Play" again has finished;
  idle        CPU per second while paused, over 2 s (what a paused tab's fragment timer costs).

Play, Pause and a load are single events read in whole clock ticks (10 ms), so each figure is a
mean over ``--cycles`` (or ``--loads``) of them. The reference is a bare Streamlit script with the same controls and one metric in a fragment
(``REFERENCE`` below), run the same way on its own server: the floor that Streamlit itself costs
per run on this machine. Ends with these lines (ms of CPU):
  page_load_cpu_ms / play_cpu_ms / redraw_cpu_ms / pause_cpu_ms / idle_cpu_ms_per_s, each
  followed by ``ref_...`` for the bare script.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import PAGE, PAUSE, PLAY, QUERY, STEPS, page_ready, steps_now  # noqa: E402
from bench.streamlit_client import BrowserSession  # noqa: E402
from tests.browser.conftest import start_streamlit, stop_streamlit  # noqa: E402

TRAIN_THREAD = "pg-train"        # playground.ui.live.TrainingThread names its OS thread so

REFERENCE = '''
import gc

import streamlit as st

if not getattr(gc, "_bench_frozen", False):     # as the app's setup_page does: Streamlit collects
    gc.collect()                                # after every run; imported objects are frozen out
    gc.freeze()
    gc._bench_frozen = True

ss = st.session_state
ss.setdefault("playing", False)
ss.setdefault("steps", 0)


def _play():
    ss.playing = True


def _pause():
    ss.playing = False


if ss.playing:
    st.button("⏸ Pause", on_click=_pause)
else:
    st.button("▶ Play", on_click=_play)


@st.fragment(run_every=0.05 if ss.playing else None)
def live():
    if ss.playing:
        ss.steps += 10
    st.metric("Steps", f"{ss.steps:,}")


live()
'''


# ---------------------------------------------------------------------------------------------
# CPU of the server's main process, without its training threads
# ---------------------------------------------------------------------------------------------
def _ticks_of(stat_path: str) -> int:
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])            # utime + stime


class ServerCPU:
    """Samples the server every 20 ms in a thread: total CPU seconds, and the CPU of each training
    thread seen so far (kept after the thread ends). ``now()`` = total - training."""

    def __init__(self, pid: int):
        self.pid = pid
        self.hz = os.sysconf("SC_CLK_TCK")
        self.train: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample_training(self) -> None:
        base = f"/proc/{self.pid}/task"
        try:
            tids = os.listdir(base)
        except OSError:
            return
        for tid in tids:
            try:
                with open(f"{base}/{tid}/comm") as f:
                    if f.read().strip() != TRAIN_THREAD:
                        continue
                t = _ticks_of(f"{base}/{tid}/stat")
            except (OSError, ValueError, IndexError):
                continue
            with self._lock:
                self.train[tid] = max(t, self.train.get(tid, 0))

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            self._sample_training()

    def now(self) -> float:
        """Main-process CPU seconds so far, training threads excluded."""
        self._sample_training()
        total = _ticks_of(f"/proc/{self.pid}/stat")
        with self._lock:
            train = sum(self.train.values())
        return (total - train) / self.hz

    def training(self) -> float:
        with self._lock:
            return sum(self.train.values()) / self.hz

    def close(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# one tab's measurements
# ---------------------------------------------------------------------------------------------
class Marker:
    """CPU read at the moment a finished run satisfying ``until`` arrives (in the tab's own
    message handler, before any later run can start)."""

    def __init__(self, s: BrowserSession, cpu: ServerCPU, until):
        self.s, self.cpu, self.until = s, cpu, until
        self.t0, self.c0 = time.monotonic(), cpu.now()
        self.c1 = self.t1 = None
        self._prev = s.on_finished
        s.on_finished = self._on_finished

    def _on_finished(self, s, status, frags):
        if self.c1 is None and self.until(s):
            self.c1, self.t1 = self.cpu.now(), time.monotonic()
        if self._prev is not None:
            self._prev(s, status, frags)

    async def result(self, timeout: float) -> tuple[float, float] | None:
        """(cpu s, wall s), or None when the run did not come in ``timeout`` s."""
        await self.s.wait_for(lambda _: self.c1 is not None, timeout)
        self.s.on_finished = self._prev
        if self.c1 is None:
            return None
        return self.c1 - self.c0, self.t1 - self.t0

    def shown_without_a_finished_run(self) -> bool:
        """The click was honoured (the page shows it) but no finished run said so (a run cut short
        by the next one): the event is left out of the mean rather than counted wrong."""
        return self.c1 is None and self.until(self.s)


class Redraws:
    def __init__(self, s: BrowserSession):
        self.n, self.runs, self.last = 0, 0, steps_now(s)
        s.on_finished = self._on_finished

    def _on_finished(self, s, status, frags):
        if not frags:
            return
        self.runs += 1
        v = steps_now(s)
        if v != self.last:
            self.n, self.last = self.n + 1, v


def _showing(label: str):
    def ok(s: BrowserSession) -> bool:
        return s.tree.button(label) is not None
    return ok


async def click_and_measure(s: BrowserSession, cpu: ServerCPU, label: str, then: str, timeout: float,
                            lost: list) -> tuple[float, float] | None:
    """Click ``label``; (cpu s, wall s) until a finished run shows ``then``. A click that Streamlit
    folds into a queued timer rerun is lost (the tick's widget states carry no trigger), as it can
    be in a browser: then it is clicked again, as a student would, and measured from that click."""
    for _ in range(3):
        m = Marker(s, cpu, _showing(then))
        if not await s.click(label):
            raise RuntimeError(f"no enabled {label} button")
        got = await m.result(min(timeout, 10.0))
        if got is not None:
            return got
        if m.shown_without_a_finished_run():
            return None
        lost.append(label)
    raise RuntimeError(f"{label} not honoured after 3 clicks: {s.errors[:3]}")


async def measure(url: str, cpu: ServerCPU, args, page: str, query: str) -> dict:
    out: dict[str, list] = {k: [] for k in ("load", "play", "redraw", "pause", "idle", "rate")}
    lost: list[str] = []
    out["lost"] = lost
    ms = 1000.0

    # idle server: its background CPU per second (subtracted from everything below)
    c0, t0 = cpu.now(), time.monotonic()
    await asyncio.sleep(2.0)
    idle_rate = (cpu.now() - c0) / (time.monotonic() - t0)

    def net(c, wall):
        return max(0.0, c - idle_rate * wall)

    async def open_tab(name):
        s = BrowserSession(url, page, query, name=name, watch_metrics=(STEPS,))
        c0, t0 = cpu.now(), time.monotonic()
        await s.start()
        if not await s.wait_for(page_ready, args.timeout):
            raise RuntimeError(f"page not ready within {args.timeout:.0f} s: {s.errors[:3]}")
        await asyncio.sleep(0.5)
        return s, net(cpu.now() - c0, time.monotonic() - t0)

    # warm-up: first load, Play, Pause (imports, caches, the first trainer)
    s, _ = await open_tab("warmup")
    if await s.click(PLAY) and await s.wait_for(_showing(PAUSE), args.timeout):
        await asyncio.sleep(2.0)
        await s.click(PAUSE)
        await s.wait_for(_showing(PLAY), args.timeout)
    await s.close()
    await asyncio.sleep(1.0)

    for i in range(args.loads):
        s, c = await open_tab(f"load{i}")
        out["load"].append(c * ms)
        if i < args.loads - 1:
            await s.close()
            await asyncio.sleep(0.5)

    try:          # the last loaded tab plays
        for cyc in range(args.cycles):
            got = await click_and_measure(s, cpu, PLAY, PAUSE, args.timeout, lost)
            if got is not None:
                out["play"].append(net(*got) * ms)
            await asyncio.sleep(1.0)                       # settle into steady redraws
            r = Redraws(s)
            c0, t0, tr0 = cpu.now(), time.monotonic(), cpu.training()
            await asyncio.sleep(args.seconds)
            c, wall = cpu.now() - c0, time.monotonic() - t0
            s.on_finished = None
            if r.n:
                out["redraw"].append(net(c, wall) / r.n * ms)
            out["rate"].append((r.n / wall, r.runs / wall, (cpu.training() - tr0) / wall))
            got = await click_and_measure(s, cpu, PAUSE, PLAY, args.timeout, lost)
            if got is not None:
                out["pause"].append(net(*got) * ms)
            await s.wait_for(_showing(PLAY), args.timeout)
            await asyncio.sleep(1.0)
            c0, t0 = cpu.now(), time.monotonic()
            await asyncio.sleep(2.0)
            out["idle"].append(net(cpu.now() - c0, time.monotonic() - t0) / (time.monotonic() - t0) * ms)
        if s.errors:
            raise RuntimeError("; ".join(s.errors[:3]))
    finally:
        await s.close()
    out["idle_server_ms_per_s"] = idle_rate * ms
    return out


def _med(v) -> float:
    return statistics.median(v) if v else float("nan")


def _mean(v) -> float:
    """Single events are read in whole clock ticks (10 ms): their mean, not their median."""
    return statistics.fmean(v) if v else float("nan")


def run_one(label: str, cwd: Path, script: str, page: str, query: str, args, env: dict) -> dict:
    proc, url = start_streamlit(extra_env=env, script=script, cwd=cwd, timeout=90, quiet=True)
    cpu = ServerCPU(proc.pid)
    try:
        res = asyncio.run(measure(url, cpu, args, page, query))
    finally:
        cpu.close()
        stop_streamlit(proc)
    rates = res["rate"]
    print(f"{label}: page load {', '.join(f'{v:.0f}' for v in res['load'])} ms; "
          f"play {', '.join(f'{v:.0f}' for v in res['play'])} ms; "
          f"redraw {', '.join(f'{v:.1f}' for v in res['redraw'])} ms; "
          f"pause {', '.join(f'{v:.0f}' for v in res['pause'])} ms; "
          f"idle {', '.join(f'{v:.1f}' for v in res['idle'])} ms/s (server idle "
          f"{res['idle_server_ms_per_s']:.1f} ms/s)"
          + (f"; clicks lost and clicked again: {len(res['lost'])}" if res["lost"] else ""))
    if rates:
        print(f"{label}: while playing {_med([r[0] for r in rates]):.1f} redraws/s, "
              f"{_med([r[1] for r in rates]):.1f} fragment runs/s, training threads "
              f"{100 * _med([r[2] for r in rates]):.0f} % of a core (wall-clock: depends on the machine's load)")
    return {k: _mean(res[k]) for k in ("load", "play", "redraw", "pause", "idle")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py is served (default this one)")
    ap.add_argument("--page", default=PAGE)
    ap.add_argument("--query", default=QUERY)
    ap.add_argument("--loads", type=int, default=5, help="fresh tabs for the page-load figure (default 5)")
    ap.add_argument("--cycles", type=int, default=5, help="Play / redraw window / Pause cycles (default 5)")
    ap.add_argument("--seconds", type=float, default=4.0, help="playing window per cycle (default 4)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for a page load or a click (default 120)")
    ap.add_argument("--workers", default="0", help="PLAYGROUND_TRAIN_WORKERS for the app server (default 0: threads)")
    ap.add_argument("--no-reference", action="store_true", help="skip the bare-script reference")
    args = ap.parse_args(argv)
    if args.loads < 1 or args.cycles < 1 or args.seconds <= 0:
        ap.error("--loads and --cycles must be >= 1, --seconds > 0")
    print(f"machine load average (1 min) {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")
    app = run_one("app", args.root.resolve(), "app.py", args.page, args.query, args,
                  {"PLAYGROUND_TRAIN_WORKERS": args.workers})
    ref = None
    if not args.no_reference:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "bare.py").write_text(REFERENCE)
            ref = run_one("reference (bare script)", Path(tmp), "bare.py", "", "", args, {})
    print(f"machine load average (1 min) {os.getloadavg()[0]:.2f} at the end")
    for key, name, unit in (("load", "page_load_cpu_ms", ".0f"), ("play", "play_cpu_ms", ".0f"),
                            ("redraw", "redraw_cpu_ms", ".1f"), ("pause", "pause_cpu_ms", ".0f"),
                            ("idle", "idle_cpu_ms_per_s", ".1f")):
        print(f"{name}: {format(app[key], unit)}")
        if ref is not None:
            print(f"ref_{name}: {format(ref[key], unit)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
