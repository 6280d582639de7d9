"""Neural Network Basics: TensorFlow Playground, with a real PyTorch model underneath."""
import base64

import numpy as np
import streamlit as st

from playground import Trainer
from playground import plots
from playground.basics import compare_optimizers, network_snapshot, output_on_grid, parameter_lines
from playground.codegen import script_for
from playground.data import toy
from playground.metrics import accuracy, confusion, mcc, r2
from playground.models import ACTIVATION_LABELS
from playground.plots.toy import curve_figure, landscape_figure, network_figure, output_figure, output_picture
from playground.setups import basics as setup
from playground.setups.basics import (ACCUM_CHOICES, BALANCE_CHOICES, BATCH_CHOICES, CMP_EPOCHS, GD_RATES, MAX_LAYERS,
                                      MAX_NEURONS, REG_RATES, WARMUP_CHOICES)
from playground.train import LEARNING_RATES, OPTIMIZERS, REGULARIZATION
from playground.ui import LiveTraining, PageState, setup_page, show_error, sidebar, stop_page
from playground.ui.sweep_view import sweep_panel
from playground.ui.doctor_view import render_doctor
from playground.ui.evaluation import chance_text, schedule_controls, split_controls, test_panel
from playground.ui.runs import model_panel, png_config

setup_page("Neural Network Basics", "🧠")

state = PageState(setup.SCHEMA, private=setup.PRIVATE)   # every setting: playground/setups/basics.py
state.load()
sidebar(state)
K = state.key

st.title("🧠 Neural network basics")
st.caption("Everything TensorFlow Playground does, with a real PyTorch MLP underneath. Pick data, build a "
           "network, press ▶ Play. Every setting is in the page's link: copy it to share this exact screen.")

# ---- hyper-parameters (top bar, as in TF Playground) -------------------------------------------------
live = LiveTraining("basics")
top = st.columns(5)
with top[0]:
    st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")
with top[1]:
    st.selectbox("Activation", tuple(ACTIVATION_LABELS), key=K("activation"), format_func=ACTIVATION_LABELS.get)
with top[2]:
    st.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
with top[3]:
    st.selectbox("Regularization", tuple(REGULARIZATION), key=K("reg"), format_func=REGULARIZATION.get)
with top[4]:
    st.select_slider("Regularization rate", REG_RATES, key=K("reg_rate"), format_func=lambda v: f"{v:g}",
                     disabled=state.get("reg") == "none")

# ---- data, features and network ----------------------------------------------------------------------
c_data, c_view = st.columns([1.3, 3], gap="medium")
with c_data:
    st.markdown("#### Data")
    st.selectbox("Data set", tuple(toy.TOY_SETS), key=K("dataset"), format_func=lambda k: toy.TOY_SETS[k].label)
    ds = toy.TOY_SETS[state.get("dataset")]
    st.caption(f"{ds.problem.capitalize()} · {ds.description}")
    split_controls(state, what="points")
    st.slider("Noise (%)", 0, 50, step=5, key=K("noise"))
    st.select_slider("Class 1 share (%)", BALANCE_CHOICES, key=K("balance"), format_func=lambda v: f"{v} %",
                     disabled=ds.problem != "classification",
                     help="Fewer class-1 points make an imbalanced set: 10 % means 90 % of the points are class 0.")
    st.select_slider("Batch size", BATCH_CHOICES, key=K("batch"), format_func=lambda b: "full" if b == 0 else str(b))
    st.toggle("Shuffle every epoch", key=K("shuffle"),
              help="Off: the training points come in their stored order every epoch (the Circle, Gaussian and "
                   "Spiral store all of class 1 first, then class 0).")
    tricks_on = state.get("overfit") or state.get("warmup") or state.get("accum") != 1 or state.get("schedule") != "off"
    with st.expander("🧪 Training tricks", expanded=bool(tricks_on)):
        st.select_slider("Warm-up (optimizer steps)", WARMUP_CHOICES, key=K("warmup"),
                         help="The learning rate grows linearly from ~0 to its value over this many optimizer steps.")
        st.select_slider("Gradient accumulation (batches per step)", ACCUM_CHOICES, key=K("accum"),
                         help="Add up the gradients of this many mini-batches before one optimizer step: "
                              "batch 5 × 4 behaves like batch 20.")
        st.toggle("Overfit one batch (sanity check)", key=K("overfit"),
                  help="Train on the first batch of training points only (10 when the batch is 'full'). "
                       "A working set-up drives their loss to about 0.")
        schedule_controls(state, early_stop=False)

    def _regenerate():
        st.session_state[K("seed")] = int(st.session_state.get(K("seed"), 0)) + 1

    st.button("🎲 Regenerate data", on_click=_regenerate, help="New random data: the seed goes up by one.")
with c_data:
    st.markdown("#### Features and hidden layers")
    allowed = toy.FEATURES_1D if ds.dims == 1 else tuple(toy.FEATURES)
    current = [f for f in state.get("features") if f in allowed] or ["x1"]
    if current != state.get("features"):
        state.set("features", current)
    st.multiselect("Input features", allowed, key=K("features"), format_func=lambda f: toy.FEATURES[f][0],
                   help="What the network sees. 1-D data sets only offer X₁, X₁² and sin(X₁).")
    st.toggle("Normalise inputs (mean 0, sd 1)", key=K("normalize"),
              help="Standardise every input feature with the training points' mean and standard deviation "
                   "before the first layer (X₁ runs to ±6, X₁² to 36).")
    st.slider("Hidden layers", 0, MAX_LAYERS, key=K("layers"))
    n_layers = state.get("layers")
    if n_layers:
        ncols = st.columns(3)
        for i in range(n_layers):
            ncols[i % 3].number_input(f"Layer {i + 1}", 1, MAX_NEURONS, step=1, key=K(f"n{i + 1}"), help="neurons")

settings = state.values()
run = setup.build(settings)     # data, network and training config; rebuilt when run.signature changes
features, spec, config = run.extras["features"], run.spec, run.config
try:
    trainer = live.ensure(run.signature, run.make_trainer,
                          run_info=dict(spec=spec, page="basics", dataset=ds.label,
                                        parameters={"features": "/".join(features), "activation": spec.activation}))
except (ValueError, RuntimeError) as e:
    show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
    stop_page(state)
trainer.set_lr(config.lr)           # live settings: applied to the running trainer, no rebuild
trainer.set_regularization(config.regularization, config.reg_rate)

with c_data:
    st.markdown("#### Display")
    st.toggle("Log-scale loss", key=K("log_y"))
    st.toggle("Show validation data", key=K("show_test"),
              help="Draw the validation points too (hollow). The test points are never drawn: they are held out.")
    st.toggle("Discretize output", key=K("discretize"))


# ---- the live view -----------------------------------------------------------------------------------
def live_config(name: str) -> dict:
    """While playing, the charts are static pictures (no hover, zoom or toolbar): Plotly then skips
    its interaction layers on each of the several redraws a second; paused, they are interactive."""
    return {**png_config(name), "staticPlot": True} if live.playing else png_config(name)


def draw(tr: Trainer) -> None:
    rec = tr.latest
    classification = ds.problem == "classification"
    # One flex row, not st.columns: 7 messages a redraw instead of 13 (each column is a block of its own),
    # which on a server shared by a class is what its sending keeps up with (bench/load.py).
    row = st.container(horizontal=True, gap="small")
    m = [row] * (6 if classification else 4)
    m[0].metric("Epoch", f"{tr.epoch:,}")
    m[1].metric("Training loss", f"{rec['train_loss']:.4f}")
    m[2].metric("Validation loss", f"{rec['val_loss']:.4f}")
    m[3].metric("Steps", f"{tr.steps:,}")
    if classification:
        ev = live.throttle("eval", lambda: tr.evaluate("val") if not tr.diverged else {}, seconds=1.0)
        m[4].metric("Accuracy", f"{ev['accuracy']:.1%}" if np.isfinite(ev.get("accuracy", np.nan)) else "–",
                    help=f"On the validation set. A model that ignores its input: {chance_text(tr, 'accuracy')}.")
        m[5].metric("MCC", f"{ev['mcc']:.2f}" if np.isfinite(ev.get("mcc", np.nan)) else "–",
                    help="Matthews correlation coefficient on the validation set: 0 for a constant or random "
                         "guess, 1 for perfect, whatever the class balance.")
    render_doctor(live.steady(tr, "doctor"), page="basics", key="doctor.basics", checks=False)   # ≤ 1/s while playing
    if tr.diverged:
        st.error(f"⚠️ Training {tr.diverged}", icon="💥")
    data = tr.data
    # Two columns of two charts (3 blocks, not 6 for two rows of two: fewer messages per redraw).
    col_net, col_out = st.columns([1.1, 1])
    col_loss, col_pvt = col_net, col_out
    with col_net:
        net = live.throttle("network", lambda: network_figure(**network_snapshot(tr, state.get("dataset"), features),
                                                              ready=True), seconds=2.0,
                            depends=(state.get("dataset"), tuple(features)))
        st.plotly_chart(net, key="basics.net", config=live_config("basics_net"))
    with col_out:
        pts, pred = output_on_grid(tr, state.get("dataset"), features, 50 if ds.dims == 2 else 200)
        P = data.meta
        show_test = state.get("show_test")
        y_tr, y_te = data.y_train.cpu().numpy(), data.y_val.cpu().numpy()
        if ds.dims == 2 and live.playing:
            # while training plays: one picture (axes and legend drawn in), not a Plotly figure, which
            # cost the browser ~60 ms of its main thread per redraw; interactive again when paused
            jpeg = output_picture(pred, 50, P["points_train"], y_tr, P["points_val"] if show_test else None,
                                  y_te if show_test else None, ds.problem, state.get("discretize"))
            st.html(f'<img alt="Output of the network over the input square" style="width:100%;height:auto" '
                    f'src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">')
            fig = None
        elif ds.dims == 2:
            fig = output_figure(pred, 50, P["points_train"], y_tr, P["points_val"] if show_test else None,
                                y_te if show_test else None, ds.problem, state.get("discretize"),
                                hover=True, ready=True)     # paused here: the picture above while playing
        else:
            fig = curve_figure(pts, pred, P["points_train"], y_tr, P["points_val"] if show_test else None,
                               y_te if show_test else None, ready=True)
        if fig is not None:
            st.plotly_chart(fig, key="basics.output", config=live_config("basics_output"))
    with col_loss:
        st.plotly_chart(plots.loss_figure(tr.history, state.get("log_y"), ready=True), key="basics.loss",
                        config=live_config("basics_loss"))
    with col_pvt:
        st.plotly_chart(live.throttle("pvt", lambda: pred_vs_true(tr, y_te), seconds=2.0, depends=ds.problem),
                        key="basics.pvt",
                        config=live_config("basics_pvt"))


def pred_vs_true(tr: Trainer, y_te: np.ndarray):
    """Regression: the course's "Pred vs True" scatter with R². Classification: the confusion matrix."""
    y_pred = tr.predict(tr.data.x_val)
    if ds.problem == "regression":
        return plots.parity_figure(y_te, y_pred, r2(y_te, y_pred), ready=True)
    finite = np.isfinite(y_pred)
    y_hat = np.where(finite, y_pred >= 0.5, 0).astype(int)
    acc = accuracy(y_te.astype(int), y_hat) if len(y_te) else float("nan")
    mc = mcc(y_te.astype(int), y_hat) if len(y_te) else float("nan")
    return plots.confusion_figure(confusion(y_te.astype(int), y_hat, 2), ["0", "1"],
                                  title=f"Validation set · accuracy {acc:.1%} · MCC {mc:.2f}", ready=True)


def paused_panels(tr: Trainer) -> None:
    if not live.playing:
        test_panel(tr, ("accuracy", "mcc") if ds.problem == "classification" else ("r2",), key="basics.test",
                   what="points")


with c_view:
    # ▶ / ⏸ live in the live view's fragment: a click redraws the view, not the whole page
    live.run(draw, controls="Step", after=paused_panels)

# ---- explanations ------------------------------------------------------------------------------------
tab_params, tab_gd, tab_cmp, tab_code, tab_save = st.tabs(["🔢 Parameters", "⛰️ Gradient descent",
                                                           "⚖️ Compare optimizers", "🐍 PyTorch code",
                                                           "💾 Save & export"])
with tab_params:
    st.markdown(f"**{spec.describe()}**")
    st.code("\n".join(parameter_lines(spec)), language=None)
    st.caption("Each neuron has one weight per input plus one bias.")

with tab_gd:
    st.markdown("One neuron with no activation is the line **y = w·x + b**. The contours are the training loss "
                "for every (w, b); the red dots are where full-batch gradient descent goes, one step at a time. "
                "Try 0.0001 (crawls), 0.003 (converges) and 0.1 (overshoots and diverges).")
    g1, g2 = st.columns(2)
    g1.select_slider("Learning rate (gradient-descent view)", GD_RATES, key=K("gd_lr"), format_func=lambda v: f"{v:g}")
    g2.slider("Steps", 5, 500, step=5, key=K("gd_steps"))
    if ds.dims != 1:
        st.caption("This view uses the 1-D **Linear (βx)** data set (the current one is 2-D).")
    path = setup.descent_view(state.values())
    st.plotly_chart(landscape_figure(path, ready=True), key="basics.landscape", config=png_config("basics_landscape"))
    final = path.loss[-1] if len(path.loss) else float("nan")
    if path.diverged or not np.isfinite(final) or final > path.loss[0]:
        st.error(f"Diverged: with learning rate {state.get('gd_lr'):g} every step overshoots the minimum "
                 f"by more than it corrects, so the loss grows (from {path.loss[0]:.3g} to {final:.3g}) "
                 "instead of shrinking.", icon="💥")
    else:
        st.info(f"After {len(path.w) - 1} steps: w = {path.w[-1]:.3f}, b = {path.b[-1]:.3f}, loss = {final:.4f} "
                f"(best possible: w = {path.w_best:.3f}, b = {path.b_best:.3f}).")

with tab_cmp:
    st.markdown("The current network trained from the **same initial weights, data and shuffling** with each "
                "optimizer at the current learning rate, one validation-loss curve each.")
    c1, c2 = st.columns([2, 1])
    c1.select_slider("Epochs per optimizer", CMP_EPOCHS, key=K("cmp_epochs"))
    cmp_sig = repr((run.signature, config.lr, state.get("cmp_epochs")))
    if c2.button("▶ Run the comparison", key="basics.compare_run", type="primary"):
        with st.spinner("Training with SGD, momentum, Adam and AdamW …"):
            st.session_state[state.slot("compare")] = (cmp_sig, compare_optimizers(settings,
                                                                                    epochs=int(state.get("cmp_epochs"))))
    got = st.session_state.get(state.slot("compare"))
    if got and got[0] == cmp_sig:
        st.plotly_chart(plots.runs_figure({OPTIMIZERS[k]: h for k, h in got[1].items()}, "val_loss",
                                          "Validation loss by optimizer", log_y=state.get("log_y")), key="basics.compare",
                        config=png_config("basics_compare_optimizers"))
        st.caption(" · ".join(f"{OPTIMIZERS[k]}: {h[-1]['val_loss']:.4f}" for k, h in got[1].items()))
    elif got:
        st.caption("The settings changed since the last comparison: run it again.")

with tab_code:
    st.markdown("The same run as a plain PyTorch script: `MLP(...)` ↔ the network boxes, "
                f"`{spec.activation}` ↔ the activation dropdown, `lr={config.lr:g}` ↔ the learning-rate slider. "
                "It regenerates the same data with the same seed, so it trains the same network.")
    code = live.memo("code", (run.signature, repr(run.config), repr(run.spec), trainer.epoch),   # live settings too
                     lambda: script_for(run, trainer))
    st.download_button("⬇️ Download train_mlp.py", code, file_name="train_mlp.py", mime="text/x-python")
    st.code(code, language="python")

with tab_save:
    model_panel(trainer, spec, page="basics", dataset=ds.label, code=code,
                settings={"features": "/".join(features), "activation": spec.activation})

sweep_panel(state, "basics", trainer.task)     # 🔎 Sweep: trials in the background (playground/ui/sweep_view.py)
state.sync()
