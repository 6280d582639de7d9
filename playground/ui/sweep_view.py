"""The "🔎 Sweep" panel of the training pages: vary some of the page's settings, run the trials in
the background (worker processes, ``python -m playground sweep worker``), and watch a live table
and Optuna's plots fill in. Each trial's link opens the page with its settings, ready to ▶ Play.

    sweep_panel(state, "basics", trainer.task)     # one call per page, below its own views

The trials never touch the page's own run: they are separate processes that read the study's spec
from the storage (``playground.sweep``), so the page keeps training while they run, and a second
core works on them. The server runs at most ``PLAYGROUND_SWEEP_MAX_WORKERS`` (2) workers at once
for everyone; more can join from a terminal or a cluster with the study's name.
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import streamlit as st

from playground import metrics as M
from playground import sweep as SW
from playground.settings import CLASSROOM_PARAMS, Param
from playground.ui.state import PageState

MAX_WORKERS_ENV = "PLAYGROUND_SWEEP_MAX_WORKERS"
REFRESH_S = 2.0
DEFAULT_VARY = {"basics": ("lr", "n1")}

# study name -> its worker processes started by this server (all sessions see them)
_PROCS: dict[str, list] = {}
_PROCS_LOCK = threading.Lock()


def max_workers() -> int:
    return max(0, int(os.environ.get(MAX_WORKERS_ENV, "2") or 2))


def live_workers(name: str | None = None) -> int:
    with _PROCS_LOCK:
        groups = [_PROCS.get(name, [])] if name else list(_PROCS.values())
        return sum(1 for procs in groups for p in procs if p.poll() is None)


def log_path(name: str, i: int) -> Path:
    d = Path(tempfile.gettempdir()) / "playground-sweeps"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.{i}.log"


def start_workers(name: str, n: int) -> int:
    """Start up to ``n`` workers for study ``name`` (within the server's cap); returns how many."""
    free = max(0, max_workers() - live_workers())
    n = min(int(n), free)
    procs = [SW.start_worker(name, log_path=log_path(name, i)) for i in range(n)]
    with _PROCS_LOCK:
        _PROCS.setdefault(name, []).extend(procs)
    return n


def stop_workers(name: str) -> None:
    """SIGTERM: each worker tells its running trial FAIL and ends."""
    with _PROCS_LOCK:
        procs = list(_PROCS.get(name, []))
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a worker that will not end is killed
            p.kill()


def worker_errors(name: str) -> list[str]:
    """The last lines of the log of each worker of ``name`` that ended with an error."""
    with _PROCS_LOCK:
        procs = list(enumerate(_PROCS.get(name, [])))
    out = []
    for i, p in procs:
        code = p.poll()
        if code not in (None, 0, -15):
            try:
                tail = log_path(name, i).read_text(errors="replace").strip().splitlines()[-3:]
            except OSError:
                tail = []
            out.append(f"worker {i + 1} ended with code {code}: " + " / ".join(tail))
    return out


# ---- the form: what varies -----------------------------------------------------------------------
def _neighbours(choices: tuple, value) -> list:
    if value not in choices:
        return list(choices[:3])
    i = choices.index(value)
    return list(choices[max(0, i - 1): i + 2])


def default_values(p: Param, value):
    """What the form offers first for setting ``p`` at its current ``value``: the value and its
    neighbours among fixed choices, both switch positions, or a range around the value as text."""
    if p.kind == "bool":
        return [True, False]
    if p.choices is not None and p.kind in ("int", "float"):
        return _neighbours(p.choices, value)
    if p.choices is not None:
        return list(p.choices[:4])
    if p.kind == "int":
        lo = int(p.lo) if p.lo is not None else value - 4
        hi = int(p.hi) if p.hi is not None else value + 4
        return f"{max(lo, value - 2)}..{min(hi, value + 2)}" if p.name != "seed" else f"{value}..{value + 3}"
    if p.kind == "float":
        lo = p.lo if p.lo is not None else 0.0
        hi = p.hi if p.hi is not None else max(1.0, 2 * value)
        return f"{lo:g}..{hi:g}:n=3"
    return p.encode(value)


def _label(p: Param) -> str:
    return f"{p.name} · {p.help}" if p.help else p.name


def _vary_inputs(state: PageState, names: list[str], values: dict, K) -> dict:
    """One input per varied setting; returns name -> list or text (parsed by make_spec)."""
    out = {}
    cols = st.columns(2)
    for i, name in enumerate(names):
        p = state.schema[name]
        key = K(f"vary.{name}")
        with cols[i % 2]:
            if p.kind == "bool" or p.choices is not None and p.kind not in ("list", "ints"):
                if key not in st.session_state:
                    st.session_state[key] = default_values(p, values[name])
                out[name] = st.multiselect(_label(p), list(p.choices) if p.choices else [True, False], key=key,
                                           format_func=lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            else:
                if key not in st.session_state:
                    st.session_state[key] = default_values(p, values[name])
                sep = "; " if p.kind in ("list", "ints") else ", "
                out[name] = st.text_input(_label(p), key=key,
                                          help=f"A list (a{sep}b{sep}c) or, for a number, a range lo..hi "
                                               "(:log for a log scale; :n=K or :step=X for a grid).")
    return out


def _metric_label(m: str, task: str | None) -> str:
    return M.label(f"val_{m}", task=task, capital=True)


def _start(state: PageState, page: str, task: str | None, K) -> None:
    ss = st.session_state
    names = ss.get(K("names")) or []
    vary = {n: ss.get(K(f"vary.{n}")) for n in names}
    budget = ss.get(K("budget"), "epochs")
    base = {k: v for k, v in state.values().items() if k not in CLASSROOM_PARAMS}
    try:
        spec = SW.make_spec(page, vary, base=base, strategy=ss.get(K("strategy"), "tpe"),
                            n_trials=None if ss.get(K("strategy")) == "grid" else int(ss.get(K("n_trials"), 8)),
                            epochs=int(ss.get(K("epochs"), 10)) if budget == "epochs" else None,
                            seconds=float(ss.get(K("seconds"), 5.0)) if budget == "seconds" else None,
                            metric=ss.get(K("metric"), "loss"), pruning=bool(ss.get(K("pruning"), False)))
        study = SW.create_study(spec)
    except SW.SweepError as e:
        ss[K("error")] = (e.message, e.hint)
        return
    ss.pop(K("error"), None)
    ss[K("pick")] = study.study_name       # the panel shows the new study
    started = start_workers(study.study_name, int(ss.get(K("workers"), 1)))
    ss[K("started")] = (study.study_name, started)


# ---- the panel ----------------------------------------------------------------------------------
def sweep_panel(state: PageState, page: str, task: str | None = None, *, expanded: bool | None = None) -> None:
    """The "🔎 Sweep" expander: the form that starts a sweep, then its live table and plots.
    ``task`` (the page's current task) picks the validation metrics offered."""
    page = SW.page_key(page)
    ss = st.session_state

    def K(name: str) -> str:
        return f"{state.page}.sweep.{name}"

    NEW = "➕ New sweep"
    current = ss.get(K("pick"), NEW)
    with st.expander("🔎 Sweep: try many settings at once", expanded=current != NEW if expanded is None else expanded):
        st.caption("Vary some of this page's settings; each trial is this page's run with those settings and the "
                   "page's seed, trained in the background (this page keeps training) and scored on the "
                   "**validation** set. Click a trial's link to open the page with its settings, ready to ▶ Play.")
        try:
            storage = SW.storage_url()
            studies = SW.list_studies(page=page)
        except SW.SweepError as e:
            from playground.ui.layout import show_error

            show_error(e.message, e.hint)
            return
        names = [s["name"] for s in reversed(studies)][:30]  # newest first (a class's server keeps many)
        if current not in names:
            ss[K("pick")] = NEW
        choice = st.selectbox("Sweep", [NEW, *names], key=K("pick"),
                              help=f"Studies of this page in {SW.safe_url(storage)}.")
        name = None if choice == NEW else choice
        if name is None:
            _form(state, page, task, K)
        err = ss.pop(K("error"), None)      # shown once: the next change of the form clears it
        if err:
            from playground.ui.layout import show_error

            show_error(*err)
        started = ss.pop(K("started"), None)
        if started and started[0] == name:
            if started[1] == 0:
                st.warning(f"The server already runs {max_workers()} sweep workers: this sweep waits for them. "
                           f"Or run workers yourself: `python -m playground sweep worker --study {name}`.", icon="⏳")
        if name:
            running = live_workers(name) > 0
            sweep_results(name, page, task, K, run_every=REFRESH_S if running else None)


def _form(state: PageState, page: str, task: str | None, K) -> None:
    ss = st.session_state
    values = state.values()
    options = SW.varying_names(page)
    if K("names") not in ss:      # what a first sweep asks: the learning rate (× the first layer's width on Basics)
        ss[K("names")] = [n for n in DEFAULT_VARY.get(page, ("lr",)) if n in options]
    names = st.multiselect("Settings to vary", options, key=K("names"),
                           format_func=lambda n: _label(state.schema[n]),
                           help="Any setting that changes the run (display settings cannot vary).")
    if not names:
        st.caption("Pick at least one setting to vary.")
    _vary_inputs(state, names, values, K)
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox("Strategy", tuple(SW.STRATEGIES), key=K("strategy"), format_func=SW.STRATEGIES.get, index=2,
                 help="Grid: every combination once. Random: independent draws. TPE: Optuna's Bayesian "
                      "sampler, which tries more near the good trials.")
    c2.number_input("Trials", 1, 200, 8, key=K("n_trials"), disabled=ss.get(K("strategy")) == "grid",
                    help="A grid runs every combination (its size).")
    budget = c3.radio("Per trial", ("epochs", "seconds"), key=K("budget"), horizontal=True,
                      help="Epochs are reproducible; seconds depend on the machine's load.")
    if budget == "epochs":
        c4.number_input("Epochs per trial", 1, 1000, 10, key=K("epochs"))
    else:
        c4.number_input("Seconds per trial", 0.5, 3600.0, 5.0, key=K("seconds"))
    metrics = SW.metrics_for(task) if task else ["loss"]
    if ss.get(K("metric")) not in metrics:
        ss[K("metric")] = metrics[1] if len(metrics) > 1 else "loss"
    d1, d2, d3 = st.columns([2, 1, 1])
    d1.selectbox("Metric (validation)", metrics, key=K("metric"), format_func=lambda m: _metric_label(m, task),
                 help="A sweep chooses by the validation set; the test set stays held out.")
    d2.toggle("Median pruning", key=K("pruning"),
              help="Stop a trial whose validation metric is worse than the median of earlier trials at the same "
                   "epoch (Optuna's MedianPruner).")
    d3.number_input("Workers", 1, max(1, max_workers()), 1, key=K("workers"),
                    help="Background processes on this server that run the trials (others can join from a "
                         "terminal: python -m playground sweep worker --study NAME).")
    if names:
        grid = ss.get(K("strategy")) == "grid"
        try:
            base = {k: v for k, v in values.items() if k not in CLASSROOM_PARAMS}
            spec = SW.make_spec(page, {n: ss.get(K(f"vary.{n}")) for n in names}, base=base,
                                strategy="grid" if grid else "random", n_trials=None if grid else 1)
            if grid:
                st.caption(f"The grid has **{spec.n_trials}** combinations.")
            for msg in SW.spec_warnings(spec):
                st.caption(f"⚠️ {msg}")
        except SW.SweepError as e:
            st.caption(f"⚠️ {e}")
    st.button("▶ Start the sweep", key=K("start"), type="primary", disabled=not names,
              on_click=_start, args=(state, page, task, K))


def _plots(study, spec, task):
    """(title, figure) of Optuna's plotly views that fit the trials so far."""
    import optuna.visualization as V
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    target = _metric_label(spec.metric, task)
    out = []
    if not complete:
        return out
    figs = [("Best so far", lambda: V.plot_optimization_history(study, target_name=target))]
    spread = [n for n in spec.names if len({repr(t.params.get(n)) for t in complete}) >= 2]
    if len(spec.names) >= 2 and len(complete) >= 2:
        figs.append(("Parallel coordinates", lambda: V.plot_parallel_coordinate(study, target_name=target)))
    if len(spread) >= 2:
        a, b = spread[:2]
        figs.append((f"{a} × {b}", lambda: V.plot_contour(study, params=[a, b], target_name=target)))
    else:     # one setting (or only one has taken two values so far): each trial's value against it
        figs.append(("Slice", lambda: V.plot_slice(study, target_name=target)))
    for title, make in figs:
        try:
            fig = make()
        except (ValueError, ZeroDivisionError, IndexError, KeyError):
            continue
        fig.update_layout(title=None, height=330, margin=dict(l=45, r=10, t=30, b=10), uirevision=title)
        out.append((title, fig))
    return out


@st.fragment
def _results_static(name, page, task, K):
    _draw_results(name, page, task, K)


@st.fragment(run_every=REFRESH_S)
def _results_live(name, page, task, K):
    _draw_results(name, page, task, K)
    if live_workers(name) == 0:
        st.rerun(scope="app")      # the sweep ended: the full rerun stops the timer


def sweep_results(name: str, page: str, task: str | None, K, run_every: float | None = None) -> None:
    """The study's table and plots; a fragment that redraws every ``run_every`` s while its workers run."""
    (_results_live if run_every else _results_static)(name, page, task, K)


def _draw_results(name: str, page: str, task: str | None, K) -> None:
    import pandas as pd

    try:
        study = SW.load_study(name)
        spec = SW.study_spec(study)
    except SW.SweepError as e:
        st.warning(str(e))
        return
    prog = SW.progress(study)
    best = SW.best_trial(study)
    running = live_workers(name)
    line = (f"**{prog['finished']} of {prog['total']}** trials finished"
            + (f" · {prog.get('running', 0)} running" if prog.get("running") else "")
            + (f" · {prog['pruned']} pruned" if prog.get("pruned") else "")
            + (f" · {prog['fail']} failed" if prog.get("fail") else "")
            + (f" · {running} worker{'s' if running != 1 else ''} here" if running else ""))
    if best is not None:
        line += f" · best {_metric_label(spec.metric, task).lower()} **{best.value:.4g}** (trial {best.number})"
    st.markdown(line)
    st.caption(spec.describe())
    for msg in worker_errors(name):
        st.warning(msg, icon="⚠️")
    c_stop, c_best = st.columns([1, 3])
    if running:
        c_stop.button("⏹ Stop the sweep", key=K(f"stop.{name}"), on_click=stop_workers, args=(name,),
                      help="Stops this server's workers; their running trials are marked failed.")
    elif not prog["done"]:
        c_stop.button("▶ Run its remaining trials", key=K(f"resume.{name}"), on_click=start_workers,
                      args=(name, 1), help="One worker on this server for the trials still to run.")
    if best is not None:
        url = SW.trial_url(spec, best.params)
        c_best.markdown(f"🏆 [Open the best trial on the page]({url}) · "
                        + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                    for k, v in best.params.items()))
    rows = SW.trial_rows(study)
    if rows:
        df = pd.DataFrame(rows).drop(columns=["worker"])
        if not df["error"].astype(bool).any():
            df = df.drop(columns=["error"])
        metric_col = f"val_{spec.metric}"
        st.dataframe(df, hide_index=True, width="stretch", key=K(f"table.{name}"),
                     column_config={"link": st.column_config.LinkColumn("open", display_text="open ↗",
                                                                        help="This page with the trial's settings"),
                                    metric_col: st.column_config.NumberColumn(
                                        _metric_label(spec.metric, task), format="%.4f")})
    plots = _plots(study, spec, task)
    if plots:
        cols = st.columns(len(plots))
        for col, (title, fig) in zip(cols, plots):
            with col:
                st.markdown(f"**{title}**")
                st.plotly_chart(fig, key=K(f"plot.{name}.{title}"), config={"displaylogo": False})
    elif rows:
        st.caption("The plots appear when the first trial completes.")
    st.caption(f"More workers, anywhere that reaches the storage: `python -m playground sweep worker --study {name}`"
               f" · report: `python -m playground sweep report --study {name}`")
