"""Run history: every run of this session in one table, and any runs' curves on one chart."""
import streamlit as st

from playground.runs import METRIC_LABELS, histories_csv, overlay_figure, runs_frame
from playground.ui import PageState, Param, setup_page, sidebar, stop_page
from playground.ui.runs import png_config, session_runs, training_page_links

setup_page("Run history", "📜")

state = PageState("history", [
    Param("metric", "val_loss"),
    Param("x", "epoch", choices=("epoch", "seconds")),
    Param("log_y", False, "bool"),
], private=("chosen",))
state.load()
sidebar(state)
K = state.key
ss = st.session_state

st.title("📜 Run history")
st.caption("Every model trained in this session, on every page: what it was, how long it trained and how well it "
           "did. Pick runs to overlay their curves. (The list lives as long as this browser session.)")

runs = session_runs()
if not runs:
    st.info("No runs yet. Train a model on any page (▶ Play or Step); each run appears here with its settings, "
            "time and best metric.", icon="📜")
    training_page_links()
    stop_page(state)

frame = runs_frame(runs)
st.dataframe(frame, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(frame)),
             column_config={"best value": st.column_config.NumberColumn(format="%.4f"),
                            "final validation loss": st.column_config.NumberColumn(format="%.4f"),
                            "seconds": st.column_config.NumberColumn(format="%.1f"),
                            "parameters": st.column_config.TextColumn(width="large")})
c1, c2 = st.columns([1, 3])
c1.download_button("⬇️ This table (CSV)", frame.to_csv(index=False), file_name="runs.csv", mime="text/csv",
                   key="history.dl_runs", on_click="ignore")
c2.caption("**best value**: the run's headline metric at its best epoch (AUROC for two classes, accuracy for several, "
           "Pearson r for numbers, Q3 per residue; the lowest validation loss when no metric was tracked; every number here is on the validation "
           "set, never the held-out test set). "
           "**status**: 'training' for a page's current run.")

st.markdown("#### Compare curves")
labels = {r.run_id: r.label for r in runs}
chosen = [rid for rid in ss.get(state.slot("chosen"), []) if rid in labels]
if not chosen:
    chosen = [r.run_id for r in runs[-3:]]
ss[state.slot("chosen")] = chosen
st.multiselect("Runs", list(labels), key=state.slot("chosen"), format_func=labels.get,
               help="Every run of the session; the three newest are picked to start with.")
picked = [r for r in runs if r.run_id in ss[state.slot("chosen")]]
metrics = []
for r in picked:
    for m in r.metric_names():
        if m not in metrics:
            metrics.append(m)
metrics = metrics or ["val_loss"]
if state.get("metric") not in metrics:
    state.set("metric", "val_loss" if "val_loss" in metrics else metrics[0])
a, b, c = st.columns([2, 1.2, 1])
a.selectbox("Metric", metrics, key=K("metric"), format_func=lambda m: METRIC_LABELS.get(m, m))
b.radio("x axis", ("epoch", "seconds"), key=K("x"), horizontal=True,
        format_func={"epoch": "Epochs", "seconds": "Seconds"}.get)
c.toggle("Log scale", key=K("log_y"))
if picked:
    fig = overlay_figure(picked, state.get("metric"), state.get("x"), state.get("log_y"))
    st.plotly_chart(fig, key="history.overlay", config=png_config("run_comparison"))
    st.download_button("⬇️ Chosen runs' histories (CSV)", histories_csv(picked), file_name="run_histories.csv",
                       mime="text/csv", key="history.dl_histories", on_click="ignore")
else:
    st.caption("Pick one or more runs above to draw their curves.")

state.sync()
