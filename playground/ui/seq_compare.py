"""The Sequence models page's run-comparison tab: several architectures on the live run's data and
split, trained in time-boxed chunks inside a fragment; finished runs stay for the session
(private slots ``seq._cmp``: the comparison in progress, ``seq._runs``: the finished runs)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from playground.compare import FAMILIES, results_table
from playground.plots.attention import comparison_figure
from playground.setups import Run
from playground.setups import sequence as S
from playground.ui.runs import png_config, record_history
from playground.ui.state import PageState


def _record(runs, task: str) -> None:
    """Each finished comparison run goes to the session's run list (Run history page) too."""
    for r in runs:
        record_history(page="seq", dataset=r.data_key, model=f"{r.name} (comparison)", spec=r.spec,
                       history=r.history, seconds=r.seconds, n_params=r.params, task=task,
                       parameters={"epochs": r.epochs, "seed": r.seed},
                       note="" if r.status == "done" else ("stopped" if r.status == "running" else r.status))


def comparison_tab(state: PageState, run: Run) -> None:
    ss = st.session_state
    cmp_key, runs_key = state.slot("cmp"), state.slot("runs")
    task, label = run.data.task, run.extras["label"]
    metric = S.headline(task)
    st.markdown("Train several architectures on **this data set and split** with the same optimizer, learning "
                "rate, batch size and seed; compare their validation curves. Runs stay here while the session "
                "lives.")
    k1, k2 = st.columns([3, 1])
    cmp_opts = S.comparison_choices(task)
    current = [f for f in state.get("cmp_models") if f in cmp_opts]
    if current != state.get("cmp_models"):
        state.set("cmp_models", current)
    k1.multiselect("Models", cmp_opts, key=state.key("cmp_models"), format_func=FAMILIES.get)
    k2.number_input("Epochs each", 1, 50, step=1, key=state.key("cmp_epochs"))
    ss.setdefault(runs_key, [])

    def _start():
        ss[cmp_key] = S.comparison(state.values(), run)

    def _stop():
        cmp = ss.pop(cmp_key, None)
        if cmp is not None:
            stopped = [r for r in cmp.runs if r.epochs > 0]
            ss[runs_key].extend(stopped)
            _record(stopped, task)

    b1, b2, b3 = st.columns(3)
    running = ss.get(cmp_key) is not None
    b1.button("🏁 Run comparison", on_click=_start, disabled=running or not state.get("cmp_models"), type="primary",
              width="stretch")
    b2.button("⏹ Stop", on_click=_stop, disabled=not running, width="stretch")
    b3.button("🗑 Clear runs", on_click=lambda: ss.__setitem__(runs_key, []), disabled=running, width="stretch")
    st.caption("Small models (about 10–80 k parameters) so that a comparison takes about a minute on two CPU cores. "
               "The 'Model' settings above are not used here.")

    @st.fragment(run_every=0.3 if running else None)
    def comparison_view():
        cmp = ss.get(cmp_key)
        if cmp is not None:
            done = cmp.run_for(0.25)
            st.progress(cmp.progress, text=f"Training {cmp.current or '…'} · {cmp.progress:.0%}")
            if done:
                ss.pop(cmp_key, None)
                ss[runs_key].extend(cmp.runs)
                _record(cmp.runs, task)
                st.rerun()
        shown_runs = [r for r in ss.get(runs_key, []) if r.data_key == label]
        if cmp is not None:
            shown_runs = shown_runs + cmp.runs
        if shown_runs:
            f1, f2 = st.columns(2)
            f1.plotly_chart(comparison_figure(shown_runs, metric), key="seq.cmp_metric",
                            config=png_config("seq_cmp_metric"))
            f2.plotly_chart(comparison_figure(shown_runs, metric, what="loss"), key="seq.cmp_loss",
                            config=png_config("seq_cmp_loss"))
        all_runs = ss.get(runs_key, [])
        if all_runs:
            st.markdown("**All runs this session**")
            st.dataframe(pd.DataFrame(results_table(all_runs)), hide_index=True, width="stretch")
        elif cmp is None:
            st.caption("No runs yet.")

    comparison_view()
