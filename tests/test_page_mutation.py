"""AppTest tests of the mutation-scan views: a typed DNA sequence on the DNA page's Explain tab
and on the Predict page, and the ESM-2 page's mutation-scan tab with the tiny checkpoint."""
from __future__ import annotations

import pytest

from tests.conftest import plotly_specs
from tests.test_page_predict import downloads  # noqa: F401 - fixture: files handed to st.download_button

DNA_PAGE = "pages/2_DNA_CNN.py"
EXPLAIN = "🔬 Explain a sequence"
TYPED = "ACGTTGCAGGCTAACGTTAGCCGATNACGT"          # 30 bases; the page's model reads 50


def no_exceptions(at):
    assert not at.exception, [e.message for e in at.exception]


def errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def ism_spec(at) -> dict:
    return next(s for s in plotly_specs(at) if "mutagenesis" in s["layout"]["title"]["text"])


def test_dna_page_scans_a_typed_sequence(app_test):
    at = app_test(DNA_PAGE, query={"tab": EXPLAIN, "scan_source": "typed", "scan_seq": TYPED}).run()
    no_exceptions(at)
    spec = ism_spec(at)
    heat = spec["data"][0]
    assert len(heat["z"]) == 4 and len(heat["z"][0]) == 30             # bases × the typed positions only
    assert heat["colorbar"]["title"]["text"] == "Δ logit"
    assert "your sequence" in spec["layout"]["title"]["text"]
    assert any("padding" in c.value for c in at.caption)                # 30 of 50 bases: a note
    assert at.get("image"), "the saliency logo"
    at.radio(key="dna.scan_units").set_value("probability").run()
    no_exceptions(at)
    assert ism_spec(at)["data"][0]["colorbar"]["title"]["text"].startswith("Δ P(")
    at.text_area(key="dna.scan_seq").input("ACGTACGTQACGT").run()
    assert "position 9: 'Q' is not a DNA letter" in errors(at)
    at.button(key="dna.scan_example").click().run()                     # a validation sequence to edit
    no_exceptions(at)
    assert len(ism_spec(at)["data"][0]["z"][0]) == 50


# ---------------------------------------------------------------------------------------------- Predict
PREDICT = "pages/5_Predict.py"


@pytest.fixture(scope="module")
def cnn_bundle():
    from playground import TrainConfig, Trainer
    from playground.bundle import bundle_from_trainer
    from playground.data import dna
    from playground.models import build_model
    from playground.models.cnn import CNNSpec

    ds = dna.planted_motif("CTCF", n=120, length=40, seed=0)
    spec = CNNSpec(length=40, channels=(8,), kernel_sizes=(10,), pool="max", pool_size=2, dense=(8,))
    tr = Trainer(build_model(spec, 0), ds.split(0.75, 0), TrainConfig(optimizer="adam", lr=0.01, batch_size=32))
    tr.run_epochs(1)
    return bundle_from_trainer(tr, spec, page="dna", dataset="planted CTCF").to_bytes()


def test_predict_page_scans_a_typed_sequence(app_test, cnn_bundle, downloads):
    import numpy as np

    from playground.bundle import load_bundle
    from playground.mutation import brute_force_scan
    from playground.predict import load_model

    at = app_test(PREDICT, {"source": "upload"}).run()
    at.file_uploader(key="predict._bundle_file").set_value(("ctcf.pt", cnn_bundle, "application/octet-stream")).run()
    at.text_area(key="predict._scan_text").set_value(">mine\n" + TYPED[:25]).run()
    at.button(key="predict.scan_go").click().run()                    # no predictions needed first
    no_exceptions(at)
    spec = ism_spec(at)
    z = np.array(spec["data"][0]["z"], dtype=float)
    assert z.shape == (4, 25) and spec["data"][0]["colorbar"]["title"]["text"] == "Δ logit"
    model = load_model(load_bundle(cnn_bundle))
    assert np.allclose(z.T, brute_force_scan(model, TYPED[:25], length=40), atol=1e-4)
    assert downloads["mutation_scan.csv"].decode().splitlines()[1].startswith("1,A,")
    at.text_area(key="predict._scan_text").set_value("ACGU" + "A" * 50).run()
    assert "has 54 bases; this model reads exactly 40" in errors(at)


# ---------------------------------------------------------------------------------------------- ESM-2
ESM_PAGE = "pages/4_Protein_Language_Model.py"
SCAN_TAB = "🧬 Mutation scan"
PROT = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


def test_esm_mutation_scan_tab(app_test, esm_offline, tiny_esm_bytes, downloads):
    import numpy as np

    from playground import esm as E

    ckpt, reg = tiny_esm_bytes
    at = app_test(ESM_PAGE, query={"tab": SCAN_TAB, "seq": PROT, "mutations": "K2E, a4g", "cpu_bf16": "0"}).run()
    at.file_uploader(key="esm.reg_upload").upload("esm2_tiny-contact-regression.pt", reg)
    at.file_uploader(key="esm.ckpt_upload").upload("esm2_tiny.pt", ckpt).run()
    no_exceptions(at)
    table = at.dataframe[0].value                                       # typed mutations: scored before any scan
    assert sorted(table["mutation"]) == ["A4G", "K2E"] and table["rank"].tolist() == [1, 2]
    assert not any(s["data"][0].get("type") == "heatmap" and "ESM-1v" in s["layout"]["title"]["text"]
                   for s in plotly_specs(at))
    at.button(key="esm.scan_btn").click().run()
    no_exceptions(at)
    spec = next(s for s in plotly_specs(at) if "ESM-1v" in s["layout"]["title"]["text"])
    z = np.array(spec["data"][0]["z"], dtype=float)
    assert z.shape == (20, len(PROT))
    h = E.load_checkpoint_bytes(ckpt, "esm2_tiny.pt", regression=reg)
    assert np.allclose(z.T, E.mutation_scan(h, PROT), atol=1e-4)
    assert spec["data"][1]["y"][:3] == list(PROT[:3])                   # the wild type marked per column
    assert downloads["esm_mutation_scan.csv"].decode().startswith("position,wild_type,A,C")
    at.text_input(key="esm.mutations").input("A2G").run()
    assert "A2G: position 2 is K, not A." in errors(at)
    assert esm_offline == []
