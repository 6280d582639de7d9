"""Run history: every run of this session in one table, and any runs' curves on one chart."""
import streamlit as st

from playground import tracking
from playground.runs import METRIC_LABELS, histories_csv, overlay_figure, runs_frame
from playground.ui import PageState, Param, setup_page, show_error, sidebar, stop_page
from playground.ui.runs import get_model, png_config, session_models, session_runs, training_page_links

setup_page("Run history", "📜")

state = PageState("history", [
    Param("metric", "val_loss"),
    Param("x", "epoch", choices=("epoch", "seconds")),
    Param("log_y", False, "bool"),
], private=("chosen", "mlflow"))
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


def export_to_mlflow(records) -> None:
    """Log the chosen runs to MLflow (./mlruns here, or MLFLOW_TRACKING_URI): settings, history per
    epoch and, when the session still has it, the model bundle (playground.tracking)."""
    models = {label.split(":", 1)[0]: mid for mid, label in session_models()}
    done = []
    try:
        for r in records:
            b = get_model(models[f"run #{r.run_id}"]) if f"run #{r.run_id}" in models else None
            done.append(tracking.log_record(r, bundle_bytes=b.to_bytes() if b is not None else None,
                                            bundle_name=b.file_name() if b is not None else "model.pt"))
    except tracking.TrackingError as e:
        ss[state.slot("mlflow")] = ("error", e.message, e.hint)
        return
    ss[state.slot("mlflow")] = ("ok", len(done), done[0].experiment if done else "", done[0].uri if done else "")


st.markdown("#### Export to MLflow")

if tracking.available():
    st.button(f"📤 Export the {len(picked)} chosen run(s) to MLflow", key="history.mlflow", disabled=not picked,
              on_click=export_to_mlflow, args=(picked,),
              help="Each run's settings (params), its history per epoch (metrics) and its model bundle (artifact), "
                   "in a local ./mlruns store on the machine running the app, or MLFLOW_TRACKING_URI when set. "
                   "No server is needed.")
    got = ss.get(state.slot("mlflow"))
    if got and got[0] == "ok":
        st.success(f"Logged {got[1]} run(s) to the MLflow experiment **{got[2]}** at `{got[3]}`. Browse them with "
                   f"`{tracking.browse_command(got[3])}`.", icon="📤")
    elif got:
        show_error(got[1], got[2])
else:
    st.caption("MLflow is not installed here (`pip install mlflow-skinny`): the CSV downloads above hold the same "
               "numbers.")

state.sync()
