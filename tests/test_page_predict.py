"""AppTest tests of the Predict page: train -> save -> upload -> predictions table -> CSV download."""
import io

import numpy as np
import pandas as pd
import pytest
import torch

from playground import TrainConfig, Trainer
from playground.bundle import bundle_from_trainer, load_bundle
from playground.data import dna
from playground.models import build_model
from playground.models.cnn import CNNSpec
from playground.predict import predict, read_input
from tests.conftest import plotly_specs

PREDICT = "pages/5_Predict.py"
BASICS = "pages/1_Neural_Network_Basics.py"


@pytest.fixture
def downloads(monkeypatch):
    """Every file handed to st.download_button during the test: {file name: bytes}."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict = {}
    orig = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        fid = orig(self, path_or_data, mimetype, kind, filename)
        if filename:
            data = path_or_data.encode() if isinstance(path_or_data, str) else bytes(path_or_data)
            files[filename] = data
        return fid

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return files


def errors(at):
    return [e.value for e in at.error]


@pytest.fixture(scope="module")
def cnn_run():
    ds = dna.planted_motif("CTCF", n=300, length=40, seed=0)
    spec = CNNSpec(length=40, channels=(8,), kernel_sizes=(10,), pool="max", pool_size=2, dense=(8,))
    tr = Trainer(build_model(spec, 0), ds.split(0.75, 0), TrainConfig(optimizer="adam", lr=0.01, batch_size=32))
    tr.run_epochs(4)
    return ds, bundle_from_trainer(tr, spec, page="dna", dataset="planted CTCF").to_bytes()


def test_train_save_upload_predict_and_download_csv(app_test, downloads):
    # train on the basics page and save the model from its Save & export panel
    at = app_test(BASICS, {"dataset": "xor", "optimizer": "adam", "lr": "0.03"}).run()
    for _ in range(3):
        at.button(key="basics.step").click().run()
    assert not at.exception
    name = [n for n in downloads if n.endswith(".pt")][-1]
    raw = downloads[name]
    b = load_bundle(raw)
    assert b.kind == "mlp" and b.training["epochs"] == 3 and b.input.kind == "features"
    assert any(n.endswith("_history.csv") for n in downloads)
    # upload it on the Predict page
    at = app_test(PREDICT, {"source": "upload"}).run()
    assert not at.exception
    at.file_uploader(key="predict._bundle_file").set_value((name, raw, "application/octet-stream")).run()
    assert not errors(at), errors(at)
    assert any("MLP" in m.value for m in at.markdown)
    at.text_area(key="predict._text").set_value("1.5, 2\n-3, 4\n0.5,-0.5\n-4,-4").run()
    at.button(key="predict.go").click().run()
    assert not at.exception and not errors(at), errors(at)
    df = at.dataframe[0].value
    assert len(df) == 4 and list(df.columns[:3]) == ["id", "x1", "x2"] and "P(1)" in df.columns
    csv = pd.read_csv(io.BytesIO(downloads["predictions.csv"]))
    assert len(csv) == 4 and np.allclose(csv["P(1)"], df["P(1)"], atol=1e-5)
    # the page's own prediction equals the model's
    expected = predict(b, read_input(b, text="1.5, 2\n-3, 4\n0.5,-0.5\n-4,-4")).probs[:, 1]
    assert np.allclose(csv["P(1)"], expected, atol=1e-5)


def test_session_model_list_after_training(app_test):
    at = app_test("app.py").run()
    at.switch_page(BASICS).run()
    at.button(key="basics.step").click().run()
    at.switch_page(PREDICT).run()
    assert not at.exception
    labels = at.selectbox(key="predict._model").options
    assert any("Current model on Neural network basics" in o for o in labels)
    at.button(key="predict.go")  # exists
    at.text_area(key="predict._text").set_value("0,0\n5,5").run()
    at.button(key="predict.go").click().run()
    assert len(at.dataframe[0].value) == 2


def test_cnn_bundle_fasta_predictions_saliency_and_clear_errors(app_test, cnn_run, downloads):
    ds, raw = cnn_run
    at = app_test(PREDICT, {"source": "upload"}).run()
    at.file_uploader(key="predict._bundle_file").set_value(("ctcf.pt", raw, "application/octet-stream")).run()
    assert not errors(at)
    fasta = "".join(f">s{i}\n{s.lower()}\n" for i, s in enumerate(ds.seqs[:30]))
    at.text_area(key="predict._text").set_value(fasta).run()
    at.button(key="predict.go").click().run()
    assert not at.exception and not errors(at), errors(at)
    df = at.dataframe[0].value
    assert len(df) == 30 and df["id"].tolist()[:2] == ["s0", "s1"] and "P(CTCF)" in df.columns
    b = load_bundle(raw)
    want = predict(b, read_input(b, text="\n".join(ds.seqs[:30]))).probs[:, 1]
    assert np.allclose(df["P(CTCF)"].to_numpy(), want, atol=1e-5)
    csv = pd.read_csv(io.BytesIO(downloads["predictions.csv"]))
    assert csv["sequence"].iloc[0] == ds.seqs[0] and len(csv) == 30
    # saliency and in-silico mutagenesis of the chosen sequence
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert any("Saliency of s0" in t for t in titles) and any("mutagenesis of s0" in t for t in titles)
    at.number_input(key="predict._pick").set_value(3).run()
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert any("Saliency of s2" in t for t in titles)
    # a bad letter: line and character, nothing lost
    at.text_area(key="predict._text").set_value(">a\n" + ds.seqs[0] + "\n>b\nACGTXACGT\n").run()
    at.button(key="predict.go").click().run()
    msg = " ".join(errors(at))
    assert "Line 4" in msg and "'X'" in msg and "position 5" in msg
    assert not at.exception
    assert at.text_area(key="predict._text").value.endswith("ACGTXACGT\n")
    # too long for the model, then cut to its length
    at.text_area(key="predict._text").set_value("A" * 45).run()
    at.button(key="predict.go").click().run()
    assert any("45 letters" in e and "limit of 40" in e for e in errors(at))
    at.radio(key="predict.long").set_value("truncate").run()
    at.button(key="predict.go").click().run()
    assert not errors(at) and len(at.dataframe[0].value) == 1


def test_untrusted_uploads_get_friendly_errors(app_test, cnn_run):
    _, raw = cnn_run
    at = app_test(PREDICT, {"source": "upload"}).run()
    at.file_uploader(key="predict._bundle_file").set_value(("cut.pt", raw[: len(raw) // 2], "application/octet-stream")).run()
    assert any("incomplete or damaged" in e for e in errors(at)) and not at.exception
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))

    buf = io.BytesIO()
    torch.save({"x": Evil()}, buf)
    at.file_uploader(key="predict._bundle_file").set_value(("evil.pt", buf.getvalue(), "application/octet-stream")).run()
    assert any("could run code" in e for e in errors(at)) and not at.exception
    at.file_uploader(key="predict._bundle_file").set_value(("p.pt", pickle.dumps([1, 2]), "application/octet-stream")).run()
    assert any("raw Python pickle" in e for e in errors(at))


def test_no_models_yet_points_to_the_pages(app_test):
    at = app_test(PREDICT).run()
    assert not at.exception
    assert any("No trained models in this session yet" in i.value for i in at.info)
