"""AppTest tests of the Protein language model page. The hub cache is an empty temporary
folder and every network connection attempt fails (and is recorded): nothing downloads."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from playground import esm as E
from playground.bundle import load_bundle
from tests.conftest import plotly_specs
from tests.test_page_predict import downloads  # noqa: F401 - fixture: files handed to st.download_button
from tests.conftest import run_history

PAGE = "pages/4_Protein_Language_Model.py"
TABS = ("🎭 Masked amino acids", "🧭 Embeddings", "🏋️ Fine-tuning vs from scratch", "🔍 Attention & contacts")


pytestmark = pytest.mark.usefixtures("esm_offline")   # no weights to find, no network (tests/conftest.py)


def titles(at) -> list[str]:
    return [s["layout"].get("title", {}).get("text", "") for s in plotly_specs(at)]


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def upload_tiny(at, tiny_esm_bytes, with_regression=True):
    ckpt, reg = tiny_esm_bytes
    if with_regression:
        at.file_uploader(key="esm.reg_upload").upload("esm2_tiny-contact-regression.pt", reg)
    at.file_uploader(key="esm.ckpt_upload").upload("esm2_tiny.pt", ckpt).run()
    assert not at.exception, at.exception
    assert "uploaded checkpoint" in texts(at.success)
    return at


def no_traceback(at):
    assert not at.exception, [e.message for e in at.exception]


def test_offline_banner_then_untrained_weights_everywhere(app_test, esm_offline):
    at = app_test(PAGE).run()
    no_traceback(at)
    assert "No pretrained ESM-2 weights available" in texts(at.warning)
    assert not any(b.key == "esm.download" for b in at.button)          # offline: no download button
    at.button(key="esm.untrained").click().run()
    no_traceback(at)
    assert "Untrained weights" in texts(at.warning)
    ts = titles(at)
    assert len(ts) >= 2 and all("untrained weights" in t for t in ts)
    for spec in plotly_specs(at):                                        # and the watermark
        assert any("UNTRAINED" in a.get("text", "") for a in spec["layout"].get("annotations", []))
    assert esm_offline == []


def test_a_download_attempt_fails_fast_with_the_banner(app_test, esm_offline, monkeypatch):
    import time

    monkeypatch.delenv("PLAYGROUND_OFFLINE")
    at = app_test(PAGE).run()
    assert "not downloaded yet" in texts(at.info)
    t0 = time.perf_counter()
    at.button(key="esm.download").click().run()
    no_traceback(at)
    assert time.perf_counter() - t0 < 15
    banner = texts(at.warning)
    assert "No pretrained ESM-2 weights available" in banner and "cannot be reached" in banner
    assert esm_offline and all(a[0][0] == E.HUB_HOST for a in esm_offline)     # only the quick probe, refused
    at.button(key="esm.untrained").click().run()
    assert "Untrained weights" in texts(at.warning)


def test_upload_checkpoint_masked_lm_and_bad_input(app_test, tiny_esm_bytes):
    at = app_test(PAGE).run()
    upload_tiny(at, tiny_esm_bytes)
    ts = titles(at)
    assert ts and not any("untrained" in t for t in ts)
    heat = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"].startswith("P(amino acid)"))
    z = np.asarray(heat["data"][0]["z"], dtype=float)                    # (21 amino acids + other, positions)
    np.testing.assert_allclose(z.sum(0), 1.0, atol=1e-6)
    assert at.dataframe[0].value["position"].tolist() == [5, 27, 48]
    # a letter outside the alphabet: a message naming the position; the text stays as typed
    at.text_area(key="esm.seq").set_value("MKTAYJAK").run()
    no_traceback(at)
    err = texts(at.error)
    assert "position 6: 'J' is not an amino-acid letter" in err and "replace it with X" in err
    assert at.text_area(key="esm.seq").value == "MKTAYJAK"
    at.text_area(key="esm.seq").set_value("MKTAYIAKQRQISFVKSHFSRQ")
    at.text_input(key="esm.mask").set_value("3").run()
    no_traceback(at)
    at.button(key="esm.ppl_btn").click().run()
    no_traceback(at)
    assert any(m.label.startswith("Pseudo-perplexity") for m in at.metric)


def test_a_file_that_is_not_esm_is_refused(app_test, tiny_esm_bytes):
    at = app_test(PAGE).run()
    bare = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, bare)
    at.file_uploader(key="esm.ckpt_upload").upload("resnet.pt", bare.getvalue()).run()
    no_traceback(at)
    assert "not an ESM-2 checkpoint" in texts(at.error)
    at.file_uploader(key="esm.ckpt_upload").set_value(("notes.pt", b"hello", "application/octet-stream")).run()
    no_traceback(at)
    assert "not a PyTorch checkpoint" in texts(at.error)
    at.button(key="esm.untrained").click().run()                        # the user can still go on
    assert "Untrained weights" in texts(at.warning)


def test_embeddings_of_an_uploaded_fasta(app_test, tiny_esm_bytes):
    at = app_test(PAGE, query={"tab": TABS[1], "data": "upload"}).run()
    upload_tiny(at, tiny_esm_bytes)
    fasta = "".join(f">prot{i} label={'ab'[i % 2]}\n{'MKTAYIAKQRQ' * (1 + i % 3)}{'DE' * i}\n" for i in range(8))
    at.file_uploader(key="esm.seq_upload").upload("proteins.fasta", fasta.encode()).run()
    no_traceback(at)
    at.button(key="esm.embed_btn").click().run()
    no_traceback(at)
    proj = next(s for s in plotly_specs(at) if "embeddings" in s["layout"]["title"]["text"])
    hover = [t for tr in proj["data"] for t in tr["text"]]
    assert sorted(hover) == sorted(f"prot{i}" for i in range(8))
    assert {tr["name"] for tr in proj["data"]} == {"label a", "label b"}
    assert len(at.get("download_button")) == 2
    assert at.metric[0].value == "8"
    # the precision follows the CPU and the checkbox: unticked, the embeddings are pure float32
    from playground import esm
    first = at.session_state["esm._emb"]["res"]
    assert first.precision == ("mixed" if esm.cpu_has_native_bf16() else "float32")
    at.checkbox(key="esm.cpu_bf16").uncheck().run()
    at.button(key="esm.embed_btn").click().run()
    no_traceback(at)
    assert at.session_state["esm._emb"]["res"].precision == "float32"
    # an empty file: a clear message, and the page keeps working
    at.file_uploader(key="esm.seq_upload").set_value(("empty.fasta", b"", "text/plain")).run()
    no_traceback(at)
    assert "empty" in texts(at.error)


@pytest.mark.slow
def test_fine_tuning_vs_scratch_side_by_side(app_test, tiny_esm_bytes):
    at = app_test(PAGE, query={"tab": TABS[2], "sweep_epochs": "1"}).run()
    upload_tiny(at, tiny_esm_bytes)
    at.button(key="esm.prep_btn").click().run()
    no_traceback(at)
    at.button(key="esm.step").click().run()
    no_traceback(at)
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["ESM-2 head (frozen)", "CNN from scratch"]
    assert (table["epochs"] >= 1).all()
    ts = titles(at)
    assert any(t.startswith("Loss: ESM-2 head vs CNN") for t in ts)
    loss = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"].startswith("Loss"))
    assert {tr["name"] for tr in loss["data"]} >= {"ESM-2 head (frozen) · validation", "CNN from scratch · validation"}
    at.select_slider(key="esm.size").set_value(10).run()                 # fewer labels: a new run
    no_traceback(at)
    assert "training on **24**" in texts(at.caption)
    at.button(key="esm.sweep_btn").click().run()
    no_traceback(at)
    assert any("training-set size" in t for t in titles(at))


def test_fine_tuning_runs_are_saved_and_listed(app_test, tiny_esm_bytes, downloads):  # noqa: F811
    at = app_test(PAGE, query={"tab": TABS[2], "size": "25"}).run()
    upload_tiny(at, tiny_esm_bytes)
    at.button(key="esm.prep_btn").click().run()
    at.button(key="esm.step").click().run()
    no_traceback(at)
    keys = {b.key for b in at.get("download_button")}
    assert {"esm.head.dl_bundle", "esm.head.dl_code", "esm.cnn.dl_bundle", "esm.cnn.dl_code"} <= keys
    assert any("Save & export: ESM-2 head" in m.value for m in at.markdown)
    pair = at.session_state["esm._trainer"]
    head_tr, cnn_tr = pair.trainers["ESM-2 head (frozen)"], pair.trainers["CNN from scratch"]
    bundles = {b.kind: b for b in (load_bundle(v) for n, v in downloads.items() if n.endswith(".pt"))}
    head, cnn = bundles["esm_head"], bundles["token_cnn"]
    # the head says which ESM-2 and layer made its inputs; the CNN is the page's own model
    assert head.input.kind == "esm_embedding" and head.input.esm_model == "esm2_tiny"
    assert head.input.esm_key == at.session_state["esm._key"]
    assert head.input.esm_layer == 2 and head.training["epochs"] == 1 and head.page == "esm"
    x = cnn_tr.data.x_test[:6]
    with torch.no_grad():
        assert torch.allclose(cnn.build_model().eval()(x), cnn_tr.outputs(x), atol=1e-5)
    # the head's script embeds the proteins this run trained on
    code = downloads[next(n for n in downloads if n.endswith(".py") and "esm_head" in n)].decode()
    compile(code, "train_esm_head.py", "exec")
    assert len(head_tr.data.y_train) < len(cnn_tr.data.meta["train_idx"])      # 25 % of the training set
    proteins = at.session_state["esm._ft"]["cnn"].meta["seqs"]
    used = [proteins[cnn_tr.data.meta["train_idx"][i]] for i in head_tr.data.meta["train_subset"]]
    assert all(p in code for p in used[:5])
    # both runs are in the session's run list; new settings finish them and start two new ones
    df = run_history(at, app_test)
    assert len(df) == 2 and set(df["page"]) == {"Protein language model"} and (df["epochs"] == 1).all()
    at.select_slider(key="esm.size").set_value(50).run()
    at.button(key="esm.step").click().run()
    no_traceback(at)
    df = run_history(at, app_test)
    assert list(df["status"]) == ["done", "done", "training", "training"]
    assert df["parameters"].str.contains("train %=25").sum() == 2
    assert df["parameters"].str.contains("train %=50").sum() == 2


def test_attention_and_contacts(app_test, tiny_esm_bytes):
    at = app_test(PAGE, query={"tab": TABS[3]}).run()
    upload_tiny(at, tiny_esm_bytes)
    ts = titles(at)
    assert any(t.startswith("Attention, layer 2") for t in ts) and "Predicted contacts" in ts
    at.selectbox(key="esm.att_head").set_value(1).run()
    no_traceback(at)
    assert any("head 2" in t for t in titles(at))
    # the same model without its contact-regression file: no contacts, an explanation instead
    at2 = app_test(PAGE, query={"tab": TABS[3]}).run()
    upload_tiny(at2, tiny_esm_bytes, with_regression=False)
    assert "contacts cannot be predicted" in texts(at2.info) or "cannot be predicted" in texts(at2.info)
    assert any(t.startswith("Attention-based contact signal") for t in titles(at2))
