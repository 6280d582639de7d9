"""``python -m playground train``: the run is the page's run for the same URL and seed."""
from __future__ import annotations

import math

import pytest

from playground.bundle import load_bundle
from playground.cli import main
from playground.cli import train as T
from playground.errors import PlaygroundError

URL = "http://localhost:8501/DNA_CNN?model=course&n=200&length=30&lr=0.01&batch=16&seed=3&tab=%F0%9F%93%88+Training"
EPOCHS = 3


def same_history(a: list[dict], b: list[dict]) -> None:
    """Every per-epoch number equal (the wall-clock 'seconds' aside)."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        keys = (set(ra) | set(rb)) - {"seconds"}
        for k in keys:
            va, vb = ra.get(k), rb.get(k)
            if isinstance(va, float) and math.isnan(va):
                assert isinstance(vb, float) and math.isnan(vb), k
            else:
                assert va == pytest.approx(vb, rel=1e-6, abs=1e-7), (ra["epoch"], k, va, vb)


def test_train_from_a_page_url_gives_the_pages_history(app_test, tmp_path, capsys):
    out = tmp_path / "dna.pt"
    assert main(["train", "--url", URL, "--epochs", str(EPOCHS), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "held-out test" in printed.out and "scored once" in printed.out
    cli = load_bundle(out)                       # the file the Predict page loads
    assert cli.page == "dna" and cli.training["epochs"] == EPOCHS and cli.training["seed"] == 3
    assert any(k.startswith("test_") for k in cli.metrics)   # scored once at the end, labelled test_

    # the page opened with the same link: same settings, and its own trainer played the same epochs
    at = app_test("pages/2_DNA_CNN.py", query=dict(T.parse_query(URL.split("?", 1)[1]))).run()
    assert not at.exception, [e.message for e in at.exception]
    _, values, _ = T.resolve(url=URL)
    for name in T.setup_module("dna").SCHEMA.run_names + ["lr", "early_stop"]:
        key = name if name in ("seed", "device") else f"dna.{name}"
        assert at.session_state[key] == values[name], name
    page_trainer = at.session_state["dna._trainer"]
    assert page_trainer.epoch == 0
    page_trainer.run_epochs(EPOCHS)
    same_history(cli.history, page_trainer.history)


def test_train_on_an_uploaded_file_matches_the_setups_run(tmp_path, capsys):
    """The Sequence page with an uploaded table: the CLI reads the file through the page's upload path."""
    import random

    from playground.setups import sequence

    rng = random.Random(0)
    rows = ["sequence,label"]
    for i in range(60):
        s = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(rng.randint(12, 30)))
        rows.append(f"{s + ('KKKK' if i % 2 else 'DDDD')},{i % 2}")
    data = tmp_path / "proteins.csv"
    data.write_text("\n".join(rows) + "\n")
    hist = tmp_path / "h.csv"
    settings = "family=cnn&c_layers=1&c_channels=8&batch=16"
    assert main(["train", "--page", "seq", "--data", str(data), "--settings", settings, "--seed", "5",
                 "--epochs", "2", "--history", str(hist), "--quiet"]) == 0
    assert "held-out test" in capsys.readouterr().out

    import pandas as pd

    values = {"dataset": "upload", "family": "cnn", "c_layers": 1, "c_channels": 8, "batch": 16, "seed": 5}
    page = sequence.build(values, (data.name, data.read_bytes())).make_trainer()
    page.run_epochs(2)
    cli = pd.read_csv(hist).to_dict("records")
    for ra, rb in zip(cli, page.history):
        for k in ("epoch", "step", "train_loss", "val_loss", "val_accuracy"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-5), k
    assert len(cli) == len(page.history) == 3


@pytest.mark.parametrize("args, words", [
    (["--page", "esm"], "not a page that trains"),
    (["--page", "protein_language_model"], "embed"),
    (["--page", "dna", "--settings", "lr=fast"], "lr"),
    (["--page", "basics", "--data", "x.csv"], "does not read a data file"),
    (["--page", "dna", "--data", "/no/such/file.csv"], "does not exist"),
    (["--url", "http://host/DNA_CNN?model=course", "--page", "seq"], "differ"),
])
def test_bad_command_lines_say_what_to_fix(args, words, capsys):
    assert main(["train", *args, "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_page_names_and_links():
    assert [T.page_key(n) for n in ("dna", "DNA_CNN", "2_DNA_CNN", "pages/2_DNA_CNN.py", "/Sequence_Models/")] == \
        ["dna", "dna", "dna", "dna", "seq"]
    key, values, warnings = T.resolve(url="http://h/Neural_Network_Basics?dataset=xor&lr=0.1&nope=1", seed=7)
    assert key == "basics" and values["dataset"] == "xor" and values["lr"] == 0.1 and values["seed"] == 7
    assert any("nope" in w for w in warnings)
    assert T.page_link(key, values) == "/Neural_Network_Basics?seed=7&dataset=xor&lr=0.1"
    with pytest.raises(PlaygroundError):
        T.parse_query("model")


def test_basics_page_and_the_plain_progress_bar(monkeypatch, capsys, tmp_path):
    """Without tqdm the bar is one plain line on stderr; the results go to stdout."""
    import sys

    monkeypatch.setitem(sys.modules, "tqdm", None)            # as if tqdm were not installed
    assert main(["train", "--page", "basics", "--settings", "dataset=xor&lr=0.1", "--epochs", "2",
                 "--out", str(tmp_path / "xor.pt")]) == 0
    cap = capsys.readouterr()
    assert "train [" in cap.err and "##" in cap.err and "held-out test" in cap.out
    b = load_bundle(tmp_path / "xor.pt")
    assert b.input.kind == "features" and b.training["epochs"] == 2
