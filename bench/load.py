"""Class-load benchmark: N simulated students press Play on one ``streamlit run app.py``.

    python bench/load.py --sessions 3                 # starts its own server on a free port
    python bench/load.py --sessions 10 --seconds 20 --url http://127.0.0.1:8501   # a running one

Each session is a headless browser tab (``bench/streamlit_client.py``) that speaks Streamlit
1.67's websocket protocol exactly as the frontend does (handshake, ``rerun_script`` with a full
``ClientState``, widget states, button triggers, the fragment ``run_every`` timer, the message
cache). All tabs run in this one asyncio process, so 10 students cost the machine almost nothing
besides the server's own work. Default page: Neural_Network_Basics with the query of
``bench/live_page.py`` (2 -> 8 -> 8 tanh, 500 points, batch 10, Adam).

What one session does:
  1. open the page, wait until it shows "▶ Play" and the "Steps" metric (``--load-timeout``);
  2. when every session has loaded (or the load timeout ran out), press "▶ Play" (sessions
     ``--ramp`` s apart), wait for "⏸ Pause", let it settle 1 s, then play ``--seconds``
     (the measured window);
  3. press "⏸ Pause" and time it: pause_s = time until the page shows "▶ Play" again *and* the
     Steps value has stopped changing (no change for 1 s after that);
  4. ``--cycles`` more short Play (``--cycle-play`` s) / Pause cycles, for the pause p95.

Definitions:
  redraw       a fragment run that finished (its ``script_finished`` arrived) and delivered a new
               "Steps" value; redraws/s = redraws in the window / window length.
  steps/s      (Steps at the end of the window - Steps at its start) / window length.
  round trip   rerun request sent -> ``script_finished`` of the run that served it (requests
               sent before that run's ``new_session`` count as served; one sample per run,
               from the oldest waiting request, i.e. what the student waited).
  errors       exception elements shown on the page, websocket errors, message-cache misses,
               timeouts (page load, Play or Pause not honoured in ``--pause-timeout`` s).
  server CPU   from /proc/<pid>/stat (100 % = one core), RSS from /proc/<pid>/status.
               rss_per_session_mb = (peak RSS while playing - RSS before the sessions connect) / N;
               before measuring the baseline one warm-up tab loads the page once (the first
               run imports torch and builds caches, which is not a per-student cost);
               ``--no-warmup`` skips it.

Render model (``--render-ms``, ``--run-render-ms``): a real tab's main thread is busy while it
decodes and renders, which delays its timer ticks and its next messages. The defaults model a
student's own laptop, where the tab has a core to itself: 2 ms per delta that changes what is
shown (decode, element-tree update, React reconcile of that element; unchanged elements - same
hash - are free, as in the frontend) plus 20 ms per finished run that changed anything (React
commit, Plotly.react of the redrawn charts). A Basics redraw sends 24 deltas of which 16 change,
so that is ~52 ms per redraw, about one 50 ms timer period: ticks are rarely delayed and the
figures depend little on the exact value. For a slow device raise ``--run-render-ms``
(``--render-ms 0 --run-render-ms 0`` is an instant browser). On this machine Chromium itself
needed 0.5-1.9 s of main-thread time per redraw (CDP ``Performance.getMetrics`` TaskDuration,
mostly script: Plotly), because its renderer got only a fraction of the 2 shared cores.

Cross-check with a real Chromium tab (one student, 10 s window, same machine and code, runs
interleaved; ``bench/live_page.py`` vs ``bench/load.py --sessions 1 --seconds 10 --cycles 0``):

    machine load    Chromium tab              bench, default render      bench, Chromium's render cost
    8-13            0.79, 0.29 redraws/s      3.40, 3.40 redraws/s       0.70 redraws/s (1000 ms per run)
                    85, 29 steps/s            16, 17 steps/s             246 steps/s
    5-7             1.96, 1.08, 1.97, 1.05    11.1, 5.1 redraws/s        1.90 redraws/s (450 ms per run)
                    160, 108, 217, 103 st/s   70, 22 steps/s             386 steps/s

  * Given the render cost the real tab had (CDP: main thread 99-107 % busy, 1.3-1.9 s per redraw
    at load 8-13, 0.5 s at load 5-7), the bench reproduces the tab's redraw rate (0.70 vs
    0.29-0.79; 1.90 vs 1.05-1.97). So the protocol and timer model match.
  * A tab on the same 2 cores is slow only because it shares the CPU. On a student's laptop it
    asks for redraws as fast as the 50 ms timer allows, and that is the default model: 3-13
    redraws/s here for one student, depending on the load.
  * Steps/s go the other way: the faster the tab asks, the fewer steps are trained, because the
    queued fragment reruns run back to back and keep the training thread on hold (16-70 steps/s
    with a fast tab, 250-390 with a slow one). The real tab's steps/s (29-217) also lose the CPU
    that Chromium takes from the server (about one core).
  * The sent BackMsgs were compared with the ones Chromium sent (captured with Playwright's
    websocket events) for load, Play, timer ticks and Pause. They carry the same 29 widget states
    (ids, value types, values), page hash, page name, query string, cached hashes, is_auto_rerun,
    fragment id and context. Only the order of the widget states differs (React mount order),
    which the server ignores.

The 2 cores are shared with other work, so every figure is noisy; the script prints the load
average at the start and the end. Everything is bounded in time (each wait has a timeout, the
whole run has a deadline) and only loopback servers are accepted.

Ends with exactly these lines:
  sessions: N / errors: E / min_redraws_per_s: X / min_steps_per_s: Y / total_redraws_per_s: T /
  pause_p95_s: P / rss_per_session_mb: M
"""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.streamlit_client import (FINISHED_EARLY, FINISHED_FRAGMENT_OK, BrowserSession,  # noqa: E402
                                    check_loopback, metric_int)

PAGE = "Neural_Network_Basics"
QUERY = "dataset=circle&layers=2&n1=8&n2=8&activation=tanh&optimizer=adam&lr=0.03&batch=10&train_pct=50&seed=1"
PLAY, PAUSE, STEPS = "▶ Play", "⏸ Pause", "Steps"
SETTLE_S = 1.0          # after Play shows as Pause, as bench/live_page.py does
STEADY_S = 1.0          # Steps must not change for this long to count as stopped


# ---------------------------------------------------------------------------------------------
# server process: CPU and memory from /proc
# ---------------------------------------------------------------------------------------------
def proc_sample(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used so far, RSS bytes) of a process, None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])          # utime + stime (fields 14, 15)
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    break
        return ticks / os.sysconf("SC_CLK_TCK"), rss
    except (OSError, ValueError, IndexError):
        return None


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on this TCP port (from /proc/net/tcp and /proc/*/fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                if os.readlink(f"/proc/{d}/fd/{fd}") in targets:
                    return int(d)
        except OSError:
            continue
    return None


class Sampler:
    """Samples a process every ``interval`` s: (time, cpu seconds, rss bytes)."""

    def __init__(self, pid: int | None, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, int]] = []

    def take(self) -> None:
        if self.pid is None:
            return
        s = proc_sample(self.pid)
        if s is not None:
            self.samples.append((time.monotonic(), s[0], s[1]))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.take()
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def window(self, t0: float, t1: float):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def cpu_percent(self, t0: float, t1: float) -> float | None:
        w = self.window(t0, t1)
        if len(w) < 2 or w[-1][0] <= w[0][0]:
            return None
        return 100.0 * (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])

    def peak_cpu_percent(self, t0: float, t1: float, span: float = 1.0) -> float | None:
        """The highest CPU % over any stretch of about ``span`` seconds in [t0, t1]."""
        w = self.window(t0, t1)
        best = None
        for i in range(len(w)):
            for k in range(i + 1, len(w)):
                if w[k][0] - w[i][0] >= span * 0.9:
                    v = 100.0 * (w[k][1] - w[i][1]) / (w[k][0] - w[i][0])
                    best = v if best is None else max(best, v)
                    break
        return best

    def peak_rss(self, t0: float, t1: float) -> int | None:
        w = self.window(t0, t1)
        return max((s[2] for s in w), default=None)

    def last_rss(self) -> int | None:
        return self.samples[-1][2] if self.samples else None


def drain(stream, keep: list[str], counts: dict) -> None:
    """Read the server's output so its pipe never fills; keep the tail, count tracebacks and
    keep the last line of each (the exception)."""
    in_tb = False
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        keep.append(line)
        del keep[:-300]
        if "Traceback (most recent call last)" in line:
            counts["tracebacks"] = counts.get("tracebacks", 0) + 1
            in_tb = True
        elif in_tb and line and not line.startswith((" ", "\t")):
            counts.setdefault("exceptions", []).append(line[:300])
            in_tb = False


# ---------------------------------------------------------------------------------------------
# one student
# ---------------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    load_s: float | None = None
    window_s: float = 0.0
    redraws: int = 0
    steps: int = 0
    fragment_runs: int = 0          # fragment runs finished in the window
    early_runs: int = 0             # ... whose script_finished came as FINISHED_EARLY_FOR_RERUN
    partial_runs: int = 0           # ... that delivered fewer deltas than a complete run
    empty_runs: int = 0             # ... that delivered no delta at all
    first_redraw_s: float | None = None   # Play pressed -> first redraw with a new Steps value
    play_s: float | None = None     # Play pressed -> that full run's script_finished
    ticks: int = 0                  # timer reruns sent in the window
    rtts: list = field(default_factory=list)
    pauses: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    kb_in: float = 0.0
    cache_hits: int = 0             # ref_hash messages answered from the tab's message cache

    @property
    def redraws_per_s(self) -> float:
        return self.redraws / self.window_s if self.window_s > 0 else 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.window_s if self.window_s > 0 else 0.0


def page_ready(s: BrowserSession) -> bool:
    return (s.tree.button(PLAY) is not None and metric_int(s.tree.metric(STEPS)) is not None
            and bool(s.finished) and s.finished[-1][1] == 0 and not s.script_is_running)


def steps_now(s: BrowserSession) -> int:
    return metric_int(s.tree.metric(STEPS)) or 0


class Window:
    """Counts redraws (fragment runs that finished with a new Steps value) while open, and
    notes every fragment run that finished (for the early / partial / empty counts)."""

    def __init__(self, s: BrowserSession, t_play: float):
        self.s, self.open, self.t_play = s, False, t_play
        self.redraws = 0
        self.runs: list[tuple] = []          # (status, deltas) of fragment runs in the window
        self.last = steps_now(s)
        self.first_redraw: float | None = None
        s.on_finished = self._on_finished

    def _on_finished(self, s, status, frags):
        if not frags:
            return
        v = steps_now(s)
        if self.first_redraw is None and v != self.last:
            self.first_redraw = time.monotonic() - self.t_play
        if not self.open:
            self.last = v
            return
        self.runs.append((status, s.finished[-1][4]))
        if v != self.last:
            self.redraws += 1
            self.last = v

    def counts(self) -> tuple[int, int, int, int]:
        """(fragment runs, early, partial, empty). A complete run is one that finished normally
        (FINISHED_FRAGMENT_RUN_SUCCESSFULLY: its script_finished was sent after all its deltas);
        partial = fewer deltas than the most common complete run."""
        ok = [d for st, d in self.runs if st == FINISHED_FRAGMENT_OK]
        full = statistics.mode(ok) if ok else max((d for _, d in self.runs), default=0)
        early = sum(1 for st, _ in self.runs if st == FINISHED_EARLY)
        partial = sum(1 for _, d in self.runs if 0 < d < full)
        empty = sum(1 for _, d in self.runs if d == 0)
        return len(self.runs), early, partial, empty


async def measure_pause(s: BrowserSession, timeout: float) -> float | None:
    """Press Pause; seconds until Play shows and Steps has stopped changing. None on timeout."""
    hist = s.metric_changes[STEPS]
    t0 = time.monotonic()
    if not await s.click(PAUSE):
        return None
    if not await s.wait_for(lambda x: x.tree.button(PLAY) is not None, timeout):
        return None
    t_play = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline and not s.closed:
        last_change = hist[-1][0] if hist else t0
        quiet_since = max(last_change, t_play)
        if time.monotonic() - quiet_since >= STEADY_S:
            return max(t_play, last_change) - t0
        await asyncio.sleep(0.05)
    return None


async def student(i: int, args, url: str, all_loaded: asyncio.Event, loaded_count: list, n: int,
                  marks: dict) -> Result:
    r = Result(f"s{i + 1}")
    s = BrowserSession(url, args.page, args.query, render_ms=args.render_ms, run_render_ms=args.run_render_ms,
                       name=r.name, watch_metrics=(STEPS,))
    try:
        await asyncio.sleep(i * args.ramp)
        t0 = time.monotonic()
        try:
            await s.start()
            ok = await s.wait_for(page_ready, args.load_timeout)
        except Exception as e:  # noqa: BLE001 - reported, never a traceback
            r.errors.append(f"could not connect: {type(e).__name__}: {e}")
            return r
        finally:                          # loaded or given up: the class does not wait for it
            loaded_count[0] += 1
            if loaded_count[0] >= n:
                all_loaded.set()
        if not ok:
            r.errors.append(f"page not ready ('{PLAY}' and '{STEPS}') within {args.load_timeout:.0f} s")
            return r
        r.load_s = time.monotonic() - t0
        try:   # wait for the class, then press Play in the order the tabs were opened
            await asyncio.wait_for(all_loaded.wait(), args.load_timeout + n * args.ramp)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(i * args.ramp)

        t_click = time.monotonic()
        win = Window(s, t_click)
        if not await s.click(PLAY):
            r.errors.append(f"no enabled '{PLAY}' button")
            return r
        if not await s.wait_for(lambda x: x.tree.button(PAUSE) is not None, args.pause_timeout):
            r.errors.append(f"Play not honoured: no '{PAUSE}' within {args.pause_timeout:.0f} s")
            return r
        await asyncio.sleep(SETTLE_S)
        rtt0, ticks0, bytes0 = len(s.rtts), s.ticks_sent, s.bytes_in
        s0, w0 = steps_now(s), time.monotonic()
        win.last, win.open = s0, True
        marks["play0"] = min(marks.get("play0", w0), w0)
        await asyncio.sleep(args.seconds)
        win.open = False
        w1 = time.monotonic()
        marks["play1"] = max(marks.get("play1", w1), w1)
        r.window_s = w1 - w0
        r.steps = steps_now(s) - s0
        r.redraws = win.redraws
        r.fragment_runs, r.early_runs, r.partial_runs, r.empty_runs = win.counts()
        r.first_redraw_s = win.first_redraw
        r.play_s = next((f[0] - t_click for f in s.finished if f[0] > t_click and not f[2]), None)
        r.rtts = s.rtts[rtt0:]
        r.ticks = s.ticks_sent - ticks0
        r.kb_in = (s.bytes_in - bytes0) / 1024

        for c in range(1 + args.cycles):
            if c > 0:
                if not await s.click(PLAY):
                    r.errors.append(f"cycle {c}: no enabled '{PLAY}' button")
                    break
                if not await s.wait_for(lambda x: x.tree.button(PAUSE) is not None, args.pause_timeout):
                    r.errors.append(f"cycle {c}: Play not honoured within {args.pause_timeout:.0f} s")
                    break
                await asyncio.sleep(args.cycle_play)
            p = await measure_pause(s, args.pause_timeout)
            if p is None:
                r.errors.append(f"pause {c + 1} not honoured within {args.pause_timeout:.0f} s")
                r.pauses.append(args.pause_timeout)
                break
            r.pauses.append(p)
        return r
    finally:
        await s.close()
        r.cache_hits = s.cache.hits
        r.errors.extend(e for e in s.errors if e not in r.errors)


async def warm_up(args, url: str) -> str | None:
    s = BrowserSession(url, args.page, args.query, render_ms=0, run_render_ms=0, name="warmup")
    try:
        await s.start()
        if not await s.wait_for(page_ready, args.load_timeout):
            return "; ".join(s.errors) or f"page not ready within {args.load_timeout:.0f} s"
        return None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    finally:
        await s.close()


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def pct(values, q: float) -> float | None:
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return None
    return v[max(0, min(len(v) - 1, math.ceil(q / 100 * len(v)) - 1))]


def fmt(v, spec=".2f", none="-") -> str:
    return none if v is None else format(v, spec)


def report(results: list[Result], sampler: Sampler, marks: dict, args, server_log: dict, client_cpu: float | None):
    n = len(results)
    print(f"page: /{args.page}?{args.query}")
    print(f"render model: {args.render_ms:g} ms per changed delta + {args.run_render_ms:g} ms per finished run; "
          f"window {args.seconds:g} s, ramp {args.ramp:g} s, {args.cycles} extra Play/Pause cycles")
    hdr = (f"{'session':>7} {'load_s':>6} {'play_s':>6} {'first_s':>7} {'redraws/s':>9} {'steps/s':>7} {'runs':>5} {'early':>5} "
           f"{'part':>4} {'empty':>5} {'ticks':>5} {'rtt_p50':>7} {'rtt_p95':>7} {'pause_s':>7} {'kB/s':>5} errors")
    print(hdr)
    for r in results:
        print(f"{r.name:>7} {fmt(r.load_s, '.1f'):>6} {fmt(r.play_s, '.1f'):>6} {fmt(r.first_redraw_s, '.1f'):>7} {r.redraws_per_s:>9.2f} "
              f"{r.steps_per_s:>7.0f} {r.fragment_runs:>5} {r.early_runs:>5} {r.partial_runs:>4} {r.empty_runs:>5} "
              f"{r.ticks:>5} {fmt(pct(r.rtts, 50), '.3f'):>7} "
              f"{fmt(pct(r.rtts, 95), '.3f'):>7} {fmt(max(r.pauses) if r.pauses else None, '.2f'):>7} "
              f"{(r.kb_in / r.window_s if r.window_s else 0):>5.0f} {len(r.errors)}")
    for r in results:
        for e in r.errors[:5]:
            print(f"  {r.name}: {e}")
        if len(r.errors) > 5:
            print(f"  {r.name}: ... {len(r.errors) - 5} more")
    print("  play_s: Play -> its full run finished; first_s: Play -> first redraw; runs: fragment runs\n"
          "  finished in the window; early: of those, runs whose end reached the server's queue clear\n"
          "  (FINISHED_EARLY_FOR_RERUN: the next run started first and this one's unsent deltas were dropped);\n"
          "  part / empty: runs that delivered only some / none of a complete run's deltas; ticks: run_every\n"
          "  reruns sent; pause_s: the slowest of the session's pauses")
    t_play0, t_play1 = marks.get("play0"), marks.get("play1")
    if sampler.pid is None:
        print("server cpu/rss: not available (server process not found)")
        rss_per = float("nan")
    else:
        cpu = sampler.cpu_percent(t_play0, t_play1) if t_play0 else None
        peak_cpu = sampler.peak_cpu_percent(t_play0, t_play1) if t_play0 else None
        base, peak = marks.get("rss_base"), sampler.peak_rss(t_play0, t_play1) if t_play0 else None
        print(f"server pid {sampler.pid}: cpu {fmt(cpu, '.0f')} % while playing (peak 1 s: {fmt(peak_cpu, '.0f')} %; "
              f"100 % = one core), rss before sessions {fmt(base and base / 2**20, '.0f')} MB"
              + (f" (cold, before warm-up {marks['rss_cold'] / 2**20:.0f} MB)" if marks.get("rss_cold") else "")
              + f", peak while playing {fmt(peak and peak / 2**20, '.0f')} MB")
        rss_per = (peak - base) / 2**20 / n if (peak and base and n) else float("nan")
    if server_log.get("tracebacks"):
        print(f"server log: {server_log['tracebacks']} traceback(s) (not counted as errors: none reached a page)")
        for line in sorted(set(server_log.get("exceptions", [])))[:5]:
            print(f"  server: {line}")
    print(f"client (this process) cpu: {fmt(client_cpu, '.0f')} % of one core; message cache: "
          f"{sum(r.cache_hits for r in results)} ref_hash messages resolved")
    la0, la1 = marks.get("load0"), os.getloadavg()
    print(f"machine load average (1 min): {la0[0]:.2f} at start, {la1[0]:.2f} at end, {os.cpu_count()} cpus "
          "(shared: figures are noisy)")
    pauses = [p for r in results for p in r.pauses]
    errors = sum(len(r.errors) for r in results)     # server log tracebacks are listed above, not counted
    print(f"sessions: {n}")
    print(f"errors: {errors}")
    print(f"min_redraws_per_s: {min((r.redraws_per_s for r in results), default=0):.2f}")
    print(f"min_steps_per_s: {min((r.steps_per_s for r in results), default=0):.0f}")
    print(f"total_redraws_per_s: {sum(r.redraws_per_s for r in results):.2f}")
    p95 = pct(pauses, 95)
    print(f"pause_p95_s: {p95:.2f}" if p95 is not None else "pause_p95_s: nan")
    print(f"rss_per_session_mb: {rss_per:.1f}")


# ---------------------------------------------------------------------------------------------
async def main_async(args, url: str, pid: int | None, server_log: dict) -> None:
    sampler = Sampler(pid)
    stop = asyncio.Event()
    marks: dict = {"load0": os.getloadavg()}
    sampler.take()
    if not args.no_warmup:
        marks["rss_cold"] = sampler.last_rss()
        err = await warm_up(args, url)
        if err:
            print(f"warm-up session failed: {err}")
        await asyncio.sleep(1.0)
    sampler.take()
    marks["rss_base"] = sampler.last_rss()
    samp = asyncio.create_task(sampler.run(stop))
    all_loaded, loaded_count = asyncio.Event(), [0]
    cpu0, wall0 = time.process_time(), time.monotonic()
    n = args.sessions
    tasks = [asyncio.create_task(student(i, args, url, all_loaded, loaded_count, n, marks)) for i in range(n)]
    budget = (args.load_timeout * 2 + 2 * n * args.ramp + args.pause_timeout + SETTLE_S + args.seconds
              + (1 + args.cycles) * (args.pause_timeout * 2 + args.cycle_play) + 30)
    done, pending = await asyncio.wait(tasks, timeout=budget)
    for t in pending:
        t.cancel()
    results = []
    for i, t in enumerate(tasks):
        if t in done and not t.cancelled() and t.exception() is None:
            results.append(t.result())
        else:
            r = Result(f"s{i + 1}")
            r.errors.append(f"did not finish within the {budget:.0f} s deadline" if t in pending
                            else f"client error: {t.exception()!r}")
            results.append(r)
    if pending:
        await asyncio.wait(pending, timeout=15)
    client_cpu = 100.0 * (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
    stop.set()
    await samp
    report(results, sampler, marks, args, server_log, client_cpu)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1, help="simulated students (default 1)")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured playing time per session (default 15)")
    ap.add_argument("--render-ms", type=float, default=2.0,
                    help="browser main-thread time per delta that changes the page (default 2)")
    ap.add_argument("--run-render-ms", type=float, default=20.0,
                    help="browser main-thread time per finished run that changed the page (default 20)")
    ap.add_argument("--page", default=PAGE, help=f"page path (default {PAGE})")
    ap.add_argument("--query", default=QUERY, help="query string of the page link")
    ap.add_argument("--ramp", type=float, default=0.25, help="seconds between session starts (default 0.25)")
    ap.add_argument("--cycles", type=int, default=2, help="extra short Play/Pause cycles per session (default 2)")
    ap.add_argument("--cycle-play", type=float, default=2.0, help="play time of each extra cycle (default 2 s)")
    ap.add_argument("--url", default=None, help="use a running server (loopback only), e.g. http://127.0.0.1:8501")
    ap.add_argument("--load-timeout", type=float, default=180.0, help="seconds for a page to load (default 180)")
    ap.add_argument("--pause-timeout", type=float, default=30.0, help="seconds for Play/Pause to be honoured")
    ap.add_argument("--no-warmup", action="store_true", help="no warm-up tab before the RSS baseline")
    args = ap.parse_args(argv)
    problems = []
    if args.sessions < 1 or args.sessions > 200:
        problems.append("--sessions must be between 1 and 200")
    for name in ("seconds", "load_timeout", "pause_timeout"):
        if not getattr(args, name) > 0:
            problems.append(f"--{name.replace('_', '-')} must be > 0")
    for name in ("render_ms", "run_render_ms", "ramp", "cycle_play"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must be >= 0")
    if args.cycles < 0:
        problems.append("--cycles must be >= 0")
    if problems:
        ap.error("; ".join(problems))
    args.page = args.page.strip("/")
    args.query = args.query.lstrip("?")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    server_log: dict = {}
    proc = None
    if args.url:
        try:
            host, port = check_loopback(args.url)
        except ValueError as e:
            print(f"cannot use --url: {e}", file=sys.stderr)
            return 2
        url = args.url.rstrip("/")
        pid = listener_pid(port)
    else:
        from tests.browser.conftest import start_streamlit, stop_streamlit

        try:
            proc, url = start_streamlit()
        except RuntimeError as e:
            print(f"cannot start the server: {e}", file=sys.stderr)
            return 2
        pid = proc.pid
        threading.Thread(target=drain, args=(proc.stdout, [], server_log), daemon=True).start()
    try:
        asyncio.run(main_async(args, url, pid, server_log))
    finally:
        if proc is not None:
            stop_streamlit(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
