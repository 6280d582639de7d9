"""Sweeps on Optuna (playground/sweep.py, the `sweep` subcommand, the 🔎 Sweep panel), on a SQLite file.

The PostgreSQL study shared by two worker processes is tests/test_sweep_postgres.py."""
from __future__ import annotations

import itertools
import signal
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

optuna = pytest.importorskip("optuna")

from playground import sweep as SW  # noqa: E402
from playground.cli import main as cli_main  # noqa: E402

BASICS = "pages/1_Neural_Network_Basics.py"


@pytest.fixture
def storage(tmp_path, monkeypatch):
    path = tmp_path / "sweeps.db"
    monkeypatch.setenv(SW.STORAGE_ENV, str(path))
    yield str(path)
    SW.close_storages()


def _trials(name):
    return SW.load_study(name).get_trials(deepcopy=False)


# ---- the spec: friendly errors ---------------------------------------------------------------------
@pytest.mark.parametrize("vary, match", [
    ({"n1": "8..2"}, "is empty"),
    ({"lr": "0.5..0.6"}, "none of its allowed values"),
    ({"log_y": [True, False]}, "display setting"),
    ({"lesson": ["a"]}, "not a setting|display setting"),
    ({"neurons": [2, 3]}, "not a setting of the basics page"),
    ({"lr": [0.002]}, "cannot be used"),
    ({"n1": "0..4"}, "outside what n1 allows"),
    ({"dataset": "upload"}, "not one of|cannot be used"),
    ({"noise": "1.5..3"}, "whole numbers"),
    ({}, "Nothing varies"),
])
def test_bad_specs_say_what_to_change(vary, match):
    with pytest.raises(SW.SweepError, match=match):
        SW.make_spec("basics", vary, epochs=1)


def test_metric_is_validation_only_and_grid_float_needs_points():
    with pytest.raises(SW.SweepError, match="test set is never"):
        SW.make_spec("basics", {"lr": [0.01]}, metric="test_accuracy")
    with pytest.raises(SW.SweepError, match="needs its points"):
        SW.make_spec("dna", {"dropout": "0..0.5"}, strategy="grid")
    spec = SW.make_spec("dna", {"dropout": "0..0.5:n=3", "c1": "8..32:step=8", "lr": "0.001..0.01"}, strategy="grid")
    assert spec.grid() == {"dropout": [0.0, 0.25, 0.5], "c1": [8, 16, 24, 32], "lr": [0.001, 0.003, 0.01]}
    assert spec.n_trials == 36


def test_unreachable_storage_names_the_url_without_its_password():
    with pytest.raises(SW.SweepStorageError) as e:
        SW.open_storage("postgresql://alice:s3cret@127.0.0.1:1/sweeps", cached=False)
    assert "alice:***@127.0.0.1:1/sweeps" in str(e.value) and "s3cret" not in str(e.value)
    assert "is the server running" in str(e.value)


# ---- trials are the page's runs --------------------------------------------------------------------
def test_a_trial_is_the_pages_run_scored_on_validation():
    from playground.setups import basics

    spec = SW.make_spec("basics", {"lr": [0.1, 0.3]}, base={"dataset": "xor", "seed": 4}, epochs=3, metric="accuracy")
    res = SW.train_trial(spec, {"lr": 0.3})
    again = SW.train_trial(spec, {"lr": 0.3})
    assert res.value == again.value and res.epochs == 3            # seeded: the same trial gives the same numbers
    tr = basics.build({**spec.base, "lr": 0.3}).make_trainer()     # the page's run, by hand
    tr.run_epochs(3)
    assert tr.evaluate("val")["accuracy"] == res.value
    assert tr.history[-1]["val_loss"] == res.history[-1]["val_loss"]


@pytest.mark.parametrize("page, vary, base, metric", [
    ("dna", {"c1": [4, 8]}, {"model": "custom", "n": 200, "length": 30}, "auroc"),
    ("sequence", {"t_layers": [1, 2]}, {"family": "transformer", "n": 200, "length": 30, "t_d": 16}, "accuracy"),
])
def test_dna_and_sequence_trials_are_their_pages_runs(page, vary, base, metric):
    spec = SW.make_spec(page, vary, base=base, strategy="grid", epochs=1, metric=metric)
    assert SW.spec_warnings(spec) == []
    name, (value, *_) = next(iter(vary.items()))
    res = SW.train_trial(spec, {name: value})
    tr = SW.setup_of(page).build({**spec.base, name: value}).make_trainer()
    tr.run_epochs(1)
    assert tr.evaluate("val")[metric] == res.value
    assert SW.trial_url(spec, {name: value}).startswith(f"/{SW.page_url_path(page)}?")


def test_a_grid_sweep_runs_exactly_its_grid_with_three_workers(storage):
    spec = SW.make_spec("basics", {"lr": "0.01..0.1", "n1": "2..3"}, strategy="grid", epochs=2, metric="accuracy")
    assert spec.n_trials == 6
    study = SW.create_study(spec, "grid3")
    counts = []
    workers = [threading.Thread(target=lambda: counts.append(SW.run_worker("grid3"))) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    trials = _trials("grid3")
    assert len(trials) == 6 and sum(c["done"] for c in counts) == 6
    assert all(t.state.name == "COMPLETE" for t in trials)
    ran = sorted((t.params["lr"], t.params["n1"]) for t in trials)
    assert ran == sorted(itertools.product([0.01, 0.03, 0.1], [2, 3]))       # every point once, nothing else
    assert SW.run_worker("grid3")["done"] == 0                                 # a late worker finds nothing to do
    best = SW.best_trial(SW.load_study("grid3"))
    assert best.value == max(t.value for t in trials)
    assert study.study_name == "grid3"


def test_random_and_tpe_draw_the_same_trials_whichever_worker(storage):
    for strategy in ("random", "tpe"):
        names = []
        for k in range(2):
            spec = SW.make_spec("basics", {"lr": "0.001..0.3", "n1": "2..8", "noise": "0..20"}, strategy=strategy,
                                n_trials=3, epochs=1, seed=7)
            name = f"{strategy}{k}"
            SW.create_study(spec, name)
            SW.run_worker(name)
            names.append([t.params for t in _trials(name)])
        assert names[0] == names[1]


def test_pruning_reports_the_validation_metric_per_epoch(storage):
    spec = SW.make_spec("basics", {"lr": [0.00001, 0.0001, 0.3, 0.1, 0.03, 0.00001]}, strategy="grid", epochs=6,
                        pruning=True, metric="loss")
    SW.create_study(spec, "pruned")
    SW.run_worker("pruned")
    trials = _trials("pruned")
    assert all(len(t.intermediate_values) >= 1 for t in trials)
    assert all(set(t.intermediate_values) <= set(range(1, 7)) for t in trials)
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}


# ---- a worker that dies ----------------------------------------------------------------------------
def _wait(cond, timeout=60.0, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def test_killing_a_worker_mid_trial_leaves_the_study_readable(storage, monkeypatch):
    monkeypatch.setenv(SW.HEARTBEAT_ENV, "1")     # heartbeats every second: stale after 2 s
    spec = SW.make_spec("basics", {"lr": [0.01, 0.1]}, strategy="grid", seconds=60)
    SW.create_study(spec, "killed")
    proc = SW.start_worker("killed")
    try:
        # mid-trial: claimed, and its settings drawn (a kill before that leaves a trial with no settings to link)
        assert _wait(lambda: any(t.state.name == "RUNNING" and "worker" in t.user_attrs and t.params
                                 for t in _trials("killed"))), \
            "the worker did not start"
        proc.send_signal(signal.SIGKILL)             # dies at once, mid-trial: no chance to tell anyone
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [t.state.name for t in SW.load_study("killed", fail_stale=False).trials] == ["RUNNING"]
    # its heartbeat goes stale: the next reader (or worker) marks the trial FAIL
    assert _wait(lambda: SW.load_study("killed").trials[0].state.name == "FAIL", timeout=15)
    study = SW.load_study("killed")                  # readable: the table, the progress and the report
    rows = SW.trial_rows(study)
    assert [r["state"] for r in rows] == ["fail"] and rows[0]["link"].startswith("/Neural_Network_Basics?")
    assert SW.progress(study)["fail"] == 1 and SW.best_trial(study) is None
    assert "best: none yet" in SW.report_text(study)


def test_a_stopped_worker_marks_its_trial_failed(storage):
    """SIGTERM (a cluster's time limit, the panel's Stop): the worker tells its running trial FAIL."""
    from playground.cli.sweep import _stop_on_sigterm

    spec = SW.make_spec("basics", {"lr": [0.01, 0.1]}, strategy="grid", seconds=30)
    SW.create_study(spec, "stopped")
    old = signal.getsignal(signal.SIGTERM)
    _stop_on_sigterm()
    timer = threading.Timer(1.0, signal.raise_signal, (signal.SIGTERM,))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            SW.run_worker("stopped")
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, old)
    (t,) = SW.load_study("stopped").trials
    assert t.state.name == "FAIL" and "stopped" in t.user_attrs["error"]
    assert SW.progress(SW.load_study("stopped"))["fail"] == 1


# ---- the command line ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["sweep", "--help"], ["sweep", "create", "--help"], ["sweep", "worker", "--help"],
                                  ["sweep", "report", "--help"], ["sweep", "list", "--help"]])
def test_every_sweep_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code == 0
    assert "usage: python -m playground sweep" in capsys.readouterr().out


def test_cli_create_worker_report(storage, capsys):
    assert cli_main(["sweep", "create", "--url", "http://localhost:8501/Neural_Network_Basics?dataset=xor&seed=3",
                     "--vary", "lr=0.03,0.3", "--vary", "activation=tanh,relu", "--strategy", "grid",
                     "--epochs", "2", "--metric", "accuracy", "--name", "cli1"]) == 0
    assert "created study cli1" in capsys.readouterr().out
    assert SW.run_worker("cli1")["done"] == 4
    assert cli_main(["sweep", "report", "--study", "cli1", "--base-url", "http://localhost:8501"]) == 0
    out = capsys.readouterr().out
    assert "complete 4 (of 4)" in out and "best: trial" in out
    assert "open it: http://localhost:8501/Neural_Network_Basics?" in out and "dataset=xor" in out
    assert cli_main(["sweep", "create", "--page", "basics", "--vary", "show_test=1,0"]) == 1
    assert "display setting" in capsys.readouterr().err
    assert cli_main(["sweep", "report", "--study", "nope"]) == 1
    assert "no study called 'nope'" in capsys.readouterr().err


# ---- the page link and the panel --------------------------------------------------------------------
def _query(url: str) -> dict:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_the_trial_link_restores_its_settings_ready_to_play(storage, app_test):
    spec = SW.make_spec("basics", {"lr": [0.1, 0.3], "n1": "3..5", "activation": ["relu", "tanh"]},
                        base={"dataset": "xor", "seed": 5, "noise": 10}, strategy="grid", epochs=3, metric="accuracy")
    params = {"lr": 0.3, "n1": 5, "activation": "relu"}
    result = SW.train_trial(spec, params)
    url = SW.trial_url(spec, params)
    assert urlsplit(url).path == "/Neural_Network_Basics"
    at = app_test(BASICS, query=_query(url))
    at.run()
    assert not at.exception
    ss = at.session_state
    assert (ss["basics.lr"], ss["basics.n1"], ss["basics.activation"]) == (0.3, 5, "relu")
    assert (ss["basics.dataset"], ss["seed"], ss["basics.noise"]) == ("xor", 5, 10)
    tr = ss["basics._trainer"]                        # the page's run for that link, before ▶ Play
    assert tr.epoch == 0
    tr.run_epochs(3)                                   # what ▶ Play trains: the trial's numbers
    assert tr.evaluate("val")["accuracy"] == result.value


def test_sweep_panel_starts_a_sweep_and_shows_a_study(storage, app_test):
    at = app_test(BASICS)
    at.run()
    assert not at.exception
    assert any(e.label.startswith("🔎 Sweep") for e in at.expander)
    # a new sweep from the panel: a grid over n1, one epoch per trial, worker processes on this machine
    at.multiselect(key="basics.sweep.names").set_value(["n1"])
    at.selectbox(key="basics.sweep.strategy").set_value("grid")
    at.number_input(key="basics.sweep.epochs").set_value(1)
    at.run()
    assert any("**5** combinations" in c.value for c in at.caption)          # n1's default 2..6 around the page's 4
    at.text_input(key="basics.sweep.vary.n1").set_value("8..2")
    at.button(key="basics.sweep.start").click()
    at.run()
    assert any("range 8..2 is empty" in e.value and "Swap them" in e.value for e in at.error)   # a friendly box
    assert at.session_state["basics.sweep.pick"] == "➕ New sweep"                             # nothing started
    at.text_input(key="basics.sweep.vary.n1").set_value("2..3")
    at.button(key="basics.sweep.start").click()
    at.run()
    assert not at.exception
    name = at.session_state["basics.sweep.pick"]
    assert name.startswith("basics-")
    # meanwhile, a study made from Python, shown by the panel below
    spec = SW.make_spec("basics", {"lr": [0.03, 0.3], "n1": [2, 4]}, strategy="grid", epochs=2, metric="accuracy")
    SW.create_study(spec, "basics-shown")
    SW.run_worker("basics-shown")
    assert _wait(lambda: SW.progress(SW.load_study(name))["done"], timeout=120), "the panel's workers did not finish"
    at.run()
    tables = [d.value for d in at.dataframe if "link" in d.value.columns]
    assert len(tables) == 1 and sorted(tables[0]["n1"]) == [2, 3] and set(tables[0]["state"]) == {"complete"}
    at.selectbox(key="basics.sweep.pick").set_value("basics-shown").run()
    assert not at.exception
    tables = [d.value for d in at.dataframe if "link" in d.value.columns]
    assert len(tables) == 1 and len(tables[0]) == 4
    assert all(u.startswith("/Neural_Network_Basics?") for u in tables[0]["link"])
    best = SW.best_trial(SW.load_study("basics-shown"))
    assert any("Open the best trial" in m.value and SW.trial_url(spec, best.params) in m.value for m in at.markdown)
    assert "4 of 4" in " ".join(m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 4        # the page's own + best-so-far, parallel coordinates, contour
