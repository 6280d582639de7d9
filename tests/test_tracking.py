"""MLflow tracking: a run logged to a local ./mlruns store and read back with MLflow's own client."""
from __future__ import annotations

import collections

import pytest

from playground import tracking  # before mlflow: it turns MLflow's telemetry off (no network)

if not tracking.available():
    pytest.skip("mlflow-skinny is not installed", allow_module_level=True)

from mlflow.tracking import MlflowClient  # noqa: E402
from playground.bundle import load_bundle  # noqa: E402
from playground.cli import main  # noqa: E402

URL = "http://localhost:8501/DNA_CNN?model=course&n=200&length=30&seed=4"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def only_run(client):
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_train_logs_settings_history_test_and_bundle(store, capsys, no_network):
    assert main(["train", "--url", URL, "--epochs", "3", "--out", "dna.pt", "--mlflow", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mlflow: run" in out and (store / "mlruns").is_dir()           # the default local store
    client = tracking._client(tracking.tracking_uri())
    run = only_run(client)
    bundle = load_bundle(store / "dna.pt")
    assert run.data.params["model"] == "course" and run.data.params["seed"] == "4" and run.data.params["page"] == "dna"
    hist = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in hist] == [0, 1, 2, 3]
    assert [m.value for m in hist] == pytest.approx([h["val_loss"] for h in bundle.history])
    assert run.data.metrics["heldout_test_loss"] == pytest.approx(bundle.metrics["test_loss"], abs=1e-6)
    assert "scored once" in run.data.tags["heldout_test"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "history.csv" in names and any(n.endswith(".pt") for n in names)
    pt = next(n for n in names if n.endswith(".pt"))
    got = load_bundle(client.download_artifacts(run.info.run_id, pt, str(store)))   # the Predict page's file
    assert got.training["epochs"] == 3
    assert no_network == []


def test_run_history_page_exports_to_mlflow(store, app_test, no_network):
    from playground.runs import RunRecord

    history = [{"epoch": e, "step": 10 * e, "seconds": 0.1 * e, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1),
                "val_accuracy": 0.5 + 0.1 * e} for e in range(4)]
    rec = RunRecord(run_id="7", page="basics", dataset="Circle", model="MLP 2 → 4 → 1", kind="mlp", task="binary",
                    parameters={"optimizer": "sgd", "lr": 0.03}, history=history, epochs=3)
    at = app_test("pages/6_Run_History.py")
    at.session_state["_runs.records"] = collections.OrderedDict([("7", rec)])
    at.run()
    at.button(key="history.mlflow").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Logged 1 run(s)" in s.value for s in at.success)
    client = MlflowClient(tracking.tracking_uri())
    run = only_run(client)
    assert run.data.params["lr"] == "0.03" and run.data.tags["session_run"] == "7"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == \
        pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert no_network == []


def test_a_store_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (blocker / "mlruns").as_uri())
    with pytest.raises(tracking.TrackingError, match="could not log"):
        tracking.log_run(name="x", params={}, history=[{"epoch": 0, "val_loss": 1.0}])
