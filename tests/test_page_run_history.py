"""AppTest tests of the Run history page, and the run records behind it."""
import io

import pandas as pd

from playground import TrainConfig, Trainer
from playground.data import toy
from playground.models import MLPSpec, build_model
from playground.runs import histories_csv, overlay_figure, run_record, runs_frame
from tests.conftest import plotly_specs

HISTORY = "pages/6_Run_History.py"
BASICS = "pages/1_Neural_Network_Basics.py"


def test_every_run_is_listed_and_curves_overlay(app_test):
    at = app_test("app.py").run()
    at.switch_page(BASICS).run()
    for _ in range(2):
        at.button(key="basics.step").click().run()
    at.selectbox(key="basics.activation").set_value("relu").run()      # a new run; the first one is finished
    at.button(key="basics.step").click().run()
    at.switch_page(HISTORY).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert len(df) == 2
    assert set(df["page"]) == {"Neural network basics"} and list(df["epochs"]) == [2, 1]
    assert "activation=tanh" in df["parameters"].iloc[0] and "activation=relu" in df["parameters"].iloc[1]
    assert list(df["status"]) == ["done", "training"]
    assert (df["seconds"] > 0).all() and df["best value"].notna().all()
    assert df["dataset"].iloc[0] and "MLP" in df["model"].iloc[0]
    fig = [s for s in plotly_specs(at) if "chosen runs" in s["layout"]["title"]["text"]][0]
    assert len(fig["data"]) == 2 and len(fig["data"][0]["x"]) == 3      # epochs 0, 1, 2
    # another metric, one run only
    at.selectbox(key="history.metric").set_value("train_loss").run()
    at.multiselect(key="history._chosen").set_value([df["run"].iloc[0]]).run()
    fig = [s for s in plotly_specs(at) if "chosen runs" in s["layout"]["title"]["text"]][0]
    assert len(fig["data"]) == 1 and "Training loss" in fig["layout"]["title"]["text"]
    # the finished run's model is on the Predict page too
    at.switch_page("pages/5_Predict.py").run()
    opts = at.selectbox(key="predict._model").options
    assert len(opts) == 2 and any("run #" in o for o in opts)


def test_empty_history_says_what_to_do(app_test):
    at = app_test(HISTORY).run()
    assert not at.exception and "No runs yet" in at.info[0].value


def test_run_records_are_plain_data():
    data = toy.make_split("xor", 200, 0.0, 0.5, 0, ["x1", "x2"])
    tr = Trainer(build_model(MLPSpec(2, (4,), "tanh", 1), 0), data, TrainConfig(lr=0.03, seed=0, track_metrics=True))
    tr.run_epochs(3)
    rec = run_record(tr, MLPSpec(2, (4,), "tanh", 1), page="basics", dataset="XOR", parameters={"noise": 0})
    row = rec.row()
    assert row["epochs"] == 3 and row["page"] == "Neural network basics" and row["best metric"] == "validation AUROC"
    assert "noise=0" in row["parameters"] and "lr=0.03" in row["parameters"]
    metric, value, epoch = rec.best()
    assert value == max(h["val_auroc"] for h in tr.history) and 0 <= epoch <= 3
    assert rec.metric_names()[:2] == ["train_loss", "val_loss"]
    csv = pd.read_csv(io.StringIO(histories_csv([rec, rec])))
    assert len(csv) == 8 and {"run", "page", "model", "epoch", "val_loss"} <= set(csv.columns)
    assert len(runs_frame([rec])) == 1
    fig = overlay_figure([rec], "val_auroc", x="seconds")
    assert fig.layout.xaxis.title.text == "seconds of training" and len(fig.data) == 1


def test_comparison_runs_recorded_as_plain_data_show_up(app_test):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string('''
import streamlit as st
from playground.ui.runs import record_history
if "recorded" not in st.session_state:
    hist = [{"epoch": 0, "seconds": 0.0, "train_loss": 0.7, "val_loss": 0.7},
            {"epoch": 1, "seconds": 1.2, "train_loss": 0.4, "val_loss": 0.5, "val_accuracy": 0.8},
            {"epoch": 2, "seconds": 2.5, "train_loss": 0.3, "val_loss": 0.45, "val_accuracy": 0.85}]
    record_history(page="seq", dataset="planted pair", model="LSTM", history=hist, seconds=2.5,
                   task="multiclass", n_params=1234, parameters={"epochs": 2})
    st.session_state.recorded = True
''', default_timeout=60)
    at.run()
    records = at.session_state["_runs.records"]
    at = app_test(HISTORY)
    at.session_state["_runs.records"] = records        # the same session, now on the Run history page
    at.run()
    assert not at.exception
    row = at.dataframe[0].value.iloc[0]
    assert row["model"] == "LSTM" and row["page"] == "Sequence models" and row["best metric"] == "validation accuracy"
    assert row["best value"] == 0.85 and row["at epoch"] == 2 and row["weights"] == 1234
