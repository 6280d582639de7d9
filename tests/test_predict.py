"""Batched predictions from bundles: input rules, tables, progress, per-residue labels, saliency,
ESM-2 heads (with the ESM-2 model the bundle names)."""
import io

import numpy as np
import pandas as pd
import pytest
import torch

from playground import TrainConfig, Trainer
from playground.bundle import BundleError, InputSpec, bundle_from_model, bundle_from_trainer, load_bundle
from playground.data import dna, protein
from playground.data.parsing import SequenceFileError
from playground.models import build_model
from playground.models.cnn import CNNSpec
from playground.models.rnn import RNNSpec
from playground.models.transformer import TransformerSpec
from playground.predict import (aligned_text, can_explain, explain, input_rules, length_limit, predict, read_input,
                                residue_summary)


@pytest.fixture(scope="module")
def cnn_bundle():
    ds = dna.planted_multiclass(("CTCF", "GATA1", "SP1 (GC box)"), n=240, length=40, seed=1)
    spec = CNNSpec(length=40, channels=(8,), kernel_sizes=(8,), pool="max", pool_size=2, dense=(8,), n_outputs=3)
    tr = Trainer(build_model(spec, 1), ds.split(0.75, 1), TrainConfig(optimizer="adam", lr=0.01, batch_size=32))
    tr.run_epochs(3)
    return ds, tr, load_bundle(bundle_from_trainer(tr, spec, page="dna", dataset="three motifs").to_bytes())


def test_dna_input_rules_and_clear_errors(cnn_bundle):
    ds, _, b = cnn_bundle
    assert length_limit(b) == 40 and "exactly 40 letters" in input_rules(b)
    with pytest.raises(SequenceFileError) as e:
        read_input(b, text=f">ok\n{ds.seqs[0]}\n>bad\nACGTAZGT\n")
    assert "Line 4, position 6" in e.value.message and "'Z'" in e.value.message and "N" in e.value.hint
    with pytest.raises(SequenceFileError, match="45 letters, more than the limit of 40"):
        read_input(b, text="A" * 45)
    cut = read_input(b, text="A" * 45 + "\n" + "C" * 10, long_policy="truncate")
    assert cut.seqs[0] == "A" * 40 and any("padded" in w for w in cut.warnings)
    with pytest.raises(SequenceFileError, match="uracil"):
        read_input(b, text="ACGU" * 10)
    assert read_input(b, text="ACGU" * 10, map_aliases=True).seqs == ["ACGT" * 10]
    with pytest.raises(SequenceFileError, match="Nothing was pasted"):
        read_input(b, text="   ")
    # an uploaded CSV with extra columns, labels ignored
    csv = "name,sequence,label\nx1," + ds.seqs[0] + ",CTCF\nx2," + ds.seqs[1].lower() + ",\n"
    parsed = read_input(b, data=csv.encode(), filename="mine.csv")
    assert parsed.ids == ["x1", "x2"] and parsed.seqs[1] == ds.seqs[1]


def test_table_csv_progress_and_batches(cnn_bundle):
    ds, tr, b = cnn_bundle
    calls = []
    res = predict(b, read_input(b, text="\n".join(ds.seqs)), batch_size=64,
                  progress=lambda d, t, m: calls.append((d, t, m)))
    assert [c[0] for c in calls] == sorted(c[0] for c in calls) and calls[-1][:2] == (240, 240)
    assert len(calls) == 4 and "batch 4 of 4" in calls[-1][2]
    tr.model.eval()
    with torch.no_grad():
        want = torch.softmax(tr.model(ds.one_hot()), -1).numpy()
    np.testing.assert_allclose(res.probs, want, atol=1e-5)
    df = res.frame()
    assert list(df.columns) == ["id", "sequence", "length", "predicted", "confidence",
                                *[f"P({c})" for c in b.classes]] and b.classes[:2] == ["CTCF", "GATA1"]
    assert df["predicted"].tolist() == [b.classes[i] for i in want.argmax(1)]
    back = pd.read_csv(io.StringIO(res.to_csv()))
    assert len(back) == 240 and back["sequence"].iloc[3] == ds.seqs[3]
    assert np.allclose(back.filter(like="P(").to_numpy().sum(1), 1.0, atol=1e-4)
    short = res.frame(max_sequence_chars=10)
    assert short["sequence"].iloc[0].endswith("…") and len(short["sequence"].iloc[0]) == 11


def test_saliency_and_mutagenesis_for_a_cnn(cnn_bundle):
    ds, _, b = cnn_bundle
    model = b.build_model()
    assert can_explain(b)
    why = explain(b, model, ds.seqs[0][:30], target=1)
    assert why["saliency"].shape == (4, 40) and why["ism"].shape == (4, 40) and why["seq"].endswith("N" * 10)
    own = np.array([["ACGT".index(c) == k for c in ds.seqs[0][:30]] for k in range(4)])
    assert np.all(why["ism"][:, :30][own] == 0) and np.abs(why["ism"]).sum() > 0
    assert np.all(why["saliency"][:, 30:] == 0)          # padding: zero input, zero saliency


def test_token_models_read_any_length_and_batching_does_not_change_results():
    ps = protein.solubility_set(n=80, min_len=20, max_len=60, seed=3)
    data = protein.to_split(ps, "random", 0.75, 3)
    spec = RNNSpec(cell="gru", vocab_size=22, embed_dim=8, hidden=8, n_outputs=1)
    tr = Trainer(build_model(spec, 3), data, TrainConfig(optimizer="adam", lr=0.01, batch_size=16))
    tr.run_epochs(2)
    b = load_bundle(bundle_from_trainer(tr, spec, page="seq", dataset="solubility").to_bytes())
    assert b.input.kind == "tokens" and b.input.alphabet == "protein" and "any length" in input_rules(b)
    parsed = read_input(b, text="\n".join(ps.seqs + ["MKV", "W" * 300]))
    big = predict(b, parsed, token_budget=100_000)
    small = predict(b, parsed, token_budget=200)          # many small, length-sorted batches
    np.testing.assert_allclose(big.probs, small.probs, atol=1e-5)
    assert big.ids[-1] == "seq82" and len(big) == 82
    with pytest.raises(SequenceFileError, match="not a protein letter"):
        read_input(b, text="MKV*LL")    # '*' only allowed at the end


def test_per_residue_labels_are_aligned():
    ps = protein.secondary_structure_set(n=40, min_len=20, max_len=30, seed=0)
    data = protein.to_split(ps, "random", 0.75, 0)
    spec = TransformerSpec(vocab_size=22, d_model=16, heads=2, layers=1, ff=16, pooling="per_position", n_outputs=3)
    tr = Trainer(build_model(spec, 0), data, TrainConfig(optimizer="adam", lr=0.01, batch_size=8))
    tr.run_epochs(2)
    b = bundle_from_trainer(tr, spec, page="seq", dataset="ss")
    res = predict(b, read_input(b, text="\n".join(ps.seqs[:5])))
    assert all(len(lab) == len(s) for lab, s in zip(res.per_residue, ps.seqs[:5]))
    assert set("".join(res.per_residue)) <= {"H", "E", "C"}
    df = res.frame()
    assert {"per-residue labels", "composition", "mean confidence"} <= set(df.columns)
    text = aligned_text("ACDEFGHIKL" * 7, "HHHEEECCCC" * 7, width=60)
    lines = text.splitlines()
    assert lines[0].strip() == "1" and lines[1].endswith("ACDEFGHIKL" * 6) and lines[2].endswith("HHHEEECCCC" * 6)
    assert lines[1].index("A") == lines[2].index("H")
    assert residue_summary("HHEC", ["H", "E", "C"]) == "H 50% · E 25% · C 25%"


def test_esm_head_bundles_name_their_esm2_model_and_predict_end_to_end():
    from playground import esm

    handle = esm.random_model("esm2_t6_8M_UR50D", seed=0)
    ps = protein.solubility_set(n=40, min_len=20, max_len=40, seed=5)
    base = protein.to_split(ps, "random", 0.75, 5)
    for finetune in (0, 1):
        data = esm.head_split(handle, ps.seqs, base, finetune_layers=finetune)
        spec = esm.make_head_spec(handle, data, head="logistic", finetune_layers=finetune)
        tr = Trainer(build_model(spec, 0), data, TrainConfig(optimizer="adam", lr=0.01, batch_size=8))
        tr.run_epochs(1)
        raw = bundle_from_trainer(tr, spec, page="esm", dataset="solubility").to_bytes()
        b = load_bundle(raw)
        assert b.input.esm_model == "esm2_t6_8M_UR50D" and b.input.kind == ("esm_finetune" if finetune else "esm_embedding")
        assert "esm2_t6_8M_UR50D" in input_rules(b)
        if finetune:
            esm.unload(handle.key)                # a fresh process: the bundle brings its ESM-2 back (same seed)
        test_seqs = [ps.seqs[i] for i in base.meta["test_idx"]]
        res = predict(b, read_input(b, text="\n".join(test_seqs)))
        assert any("untrained" in w for w in res.warnings)
        np.testing.assert_allclose(res.probs[:, 1], tr.predict(data.x_test), atol=1e-4)
        handle = esm.random_model("esm2_t6_8M_UR50D", seed=0)


def test_a_bundle_needing_an_unavailable_esm2_model_says_so(tmp_path, monkeypatch):
    from playground import esm
    from playground.models.esm_head import ESMHeadSpec

    monkeypatch.setattr(esm, "hub_dir", lambda: tmp_path)        # an empty cache: nothing to load offline
    spec = ESMHeadSpec(esm_model="pretrained:esm2_t12_35M_UR50D|cpu|float32", esm_name="esm2_t12_35M_UR50D",
                       layer=12, embed_dim=480)
    b = bundle_from_model(build_model(spec), spec, InputSpec("esm_embedding", "protein", esm_model="esm2_t12_35M_UR50D"),
                          "binary", ["no", "yes"])
    with pytest.raises(BundleError) as e:
        predict(b, read_input(b, text="MKVLAAGIV"))
    assert "esm2_t12_35M_UR50D" in e.value.message and "Protein language model page" in e.value.hint
