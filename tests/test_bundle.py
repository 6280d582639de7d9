"""Model bundles: every family round-trips with identical predictions; untrusted files are refused
with messages a student can act on."""
import dataclasses
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

import playground
from playground import TrainConfig, Trainer
from playground.bundle import (FORMAT, Bundle, BundleError, InputSpec, bundle_from_trainer, infer_input,
                               load_bundle)
from playground.data import dna, protein, toy
from playground.data.split import SplitData
from playground.models import MLPSpec, build_model
from playground.models.cnn import CNNSpec, LogisticRegressionSpec
from playground.models.esm_head import ESMHeadSpec
from playground.models.hybrid import HybridSpec, TokenCNNSpec
from playground.models.rnn import RNNSpec
from playground.models.transformer import TransformerSpec
from playground.predict import predict, read_input

CFG = dict(optimizer="adam", lr=0.01, batch_size=16, seed=1)


def _dna_tokens(n=80, length=30, seed=0):
    ds = dna.planted_motif("CTCF", n=n, length=length, seed=seed)
    from playground.encoding import DNA, tokenize

    x = tokenize(ds.seqs, DNA, length)
    data = SplitData.from_arrays(x, ds.y.astype(np.float32), "binary", 0.75, seed, n_classes=2,
                                 class_names=list(ds.class_names), meta={"alphabet": "dna"})
    return ds.seqs, data


def _protein(task="binary", n=60):
    if task == "per_residue":
        ps = protein.secondary_structure_set(n=n, min_len=20, max_len=30, seed=0)
    else:
        ps = protein.solubility_set(n=n, min_len=20, max_len=40, seed=0, task=task)
    return ps.seqs, protein.to_split(ps, "random", 0.75, 0)


def make_run(family: str):
    """(trainer, spec, the sequences (or points) the data came from, page)."""
    if family == "mlp":
        data = toy.make_split("circle", 120, 0.1, 0.5, 0, ["x1", "x2", "x1_sq"])
        spec = MLPSpec(3, (4, 2), "tanh", 1)
        seqs, page = data.meta["points"], "basics"
    elif family in ("cnn", "logreg", "mlp_onehot"):
        ds = dna.planted_multiclass(("CTCF", "GATA1", "SP1 (GC box)"), n=120, length=30, seed=0) \
            if family == "cnn" else dna.planted_motif("CTCF", n=100, length=30, seed=0)
        data = ds.split(0.75, 0)
        spec = {"cnn": CNNSpec(length=30, channels=(8,), kernel_sizes=(6,), batch_norm=True, pool="max",
                               pool_size=2, dense=(8,), n_outputs=data.n_outputs),
                "logreg": LogisticRegressionSpec(length=30, n_outputs=1),
                "mlp_onehot": MLPSpec(120, (8,), "relu", 1)}[family]
        seqs, page = ds.seqs, "dna"
    elif family in ("lstm", "gru"):
        seqs, data = _dna_tokens()
        spec = RNNSpec(cell=family, vocab_size=6, embed_dim=8, hidden=8, bidirectional=True, n_outputs=1)
        page = "seq"
    elif family == "transformer":
        seqs, data = _protein("per_residue", 40)
        spec = TransformerSpec(vocab_size=22, d_model=16, heads=2, layers=1, ff=32, pooling="per_position",
                               positional="learned", max_len=40, n_outputs=3)
        page = "seq"
    elif family == "hybrid":
        seqs, data = _dna_tokens()
        spec = HybridSpec(vocab_size=5, embed_dim=8, conv1_channels=8, conv2_channels=16, pool_positions=8, heads=2,
                          ff=16, layers=1, hidden=8, positional="sinusoidal", n_outputs=1)
        page = "seq"
    elif family == "token_cnn":
        seqs, data = _protein("regression", 60)
        spec = TokenCNNSpec(vocab_size=21, embed_dim=8, channels=(8,), kernel=3, pooling="max", n_outputs=1)
        page = "seq"
    elif family == "esm_head":
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.normal(size=(60, 32)).astype(np.float32))
        y = (x[:, 0] > 0).long().numpy()
        data = SplitData.from_arrays(x, y, "multiclass", 0.75, 0, n_classes=2, class_names=["neg", "pos"])
        spec = ESMHeadSpec(esm_model="untrained:esm2_t6_8M_UR50D:seed0|cpu|float32", embed_dim=32, head="mlp",
                           hidden=8, n_outputs=2, untrained_esm=True)
        seqs, page = None, "esm"
    else:
        raise ValueError(family)
    tr = Trainer(build_model(spec, 0), data, TrainConfig(**CFG))
    tr.run_epochs(2)
    return tr, spec, seqs, page


FAMILIES = ["mlp", "cnn", "logreg", "mlp_onehot", "lstm", "gru", "transformer", "hybrid", "token_cnn", "esm_head"]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_round_trips_with_identical_predictions(family):
    tr, spec, seqs, page = make_run(family)
    b = bundle_from_trainer(tr, spec, page=page, dataset=f"{family} test set")
    raw = b.to_bytes()
    back = load_bundle(raw)
    assert back.spec == spec and back.task == tr.task and back.page == page
    assert back.library_version == playground.__version__
    assert back.training["epochs"] == 2 and back.training["lr"] == 0.01 and back.training["seed"] == 1
    assert back.history and back.history[-1]["epoch"] == 2
    assert back.metrics and all(np.isfinite(v) for v in back.metrics.values())
    # the saved scores are the validation set's: saving a model is no look at the test set
    assert back.training["metrics_on"] == "validation" and tr.test_looks == 0
    assert back.training["n_val"] == len(tr.data.y_val) > 0 and back.training["n_test"] == len(tr.data.y_test)
    assert back.metrics["loss"] == pytest.approx(tr.evaluate("val")["loss"], rel=1e-5)
    assert not any(k.startswith("test_") for k in back.metrics)
    model = back.build_model()
    x = tr.data.x_test
    tr.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), tr.model(x))
    # the user-facing path (text in, table out) gives the trainer's own predictions
    if seqs is not None:
        if family == "mlp":
            pts = tr.data.meta["points_test"]
            parsed = read_input(back, text="\n".join(f"{a},{b}" for a, b in pts))
        else:
            test_seqs = [seqs[i] for i in tr.data.meta["test_idx"]]
            parsed = read_input(back, text="\n".join(test_seqs))
        res = predict(back, parsed)
        expected = tr.predict(x)
        if tr.task == "binary":
            np.testing.assert_allclose(res.probs[:, 1], expected, atol=1e-5)
        elif tr.task == "regression":
            np.testing.assert_allclose(res.values, expected, atol=1e-5)
        elif tr.task == "multiclass":
            np.testing.assert_allclose(res.probs, expected, atol=1e-5)
        else:  # per residue: labels of the real positions
            for r, lab in enumerate(res.per_residue):
                L = len(parsed.seqs[r])
                want = expected[r, :L].argmax(-1)
                assert lab == "".join(back.classes[k] for k in want)


def test_bundle_records_the_encoding_labels_and_esm_model():
    tr, spec, _, _ = make_run("cnn")
    b = bundle_from_trainer(tr, spec, page="dna", dataset="planted")
    assert b.input.kind == "one_hot" and b.input.alphabet == "dna" and b.input.length == 30
    assert b.label_names == tr.data.class_names and len(b.label_names) == 3 and b.label_names[0] == "CTCF"
    tr, spec, _, _ = make_run("esm_head")
    b = load_bundle(bundle_from_trainer(tr, spec, page="esm").to_bytes())
    assert b.input.kind == "esm_embedding" and b.input.esm_model == "esm2_t6_8M_UR50D"
    assert "esm2_t6_8M_UR50D" in b.input.describe()
    tr, spec, _, _ = make_run("token_cnn")
    assert infer_input(spec, tr.data).alphabet == "protein"
    # plain PyTorch reads a bundle too
    raw = torch.load(io.BytesIO(b.to_bytes()), weights_only=True)
    assert raw["format"] == FORMAT and raw["spec"]["kind"] == "esm_head" and "net.0.weight" in raw["state_dict"]


# ---------------------------------------------------------------------------------------------
# untrusted files
class RunsCode:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def test_a_scored_test_set_is_saved_beside_the_validation_scores():
    tr, spec, _, page = make_run("cnn")
    test = tr.score_test()
    back = load_bundle(bundle_from_trainer(tr, spec, page=page).to_bytes())
    assert back.metrics["test_loss"] == pytest.approx(test["loss"], abs=1e-6)
    assert back.metrics["test_accuracy"] == pytest.approx(test["accuracy"], abs=1e-6)
    assert back.metrics["loss"] == pytest.approx(tr.evaluate("val")["loss"], rel=1e-5)
    assert back.metrics["loss"] != back.metrics["test_loss"]
    assert tr.test_looks == 1                        # saving did not score it again


def _cnn_bundle_bytes():
    tr, spec, _, _ = make_run("logreg")
    return bundle_from_trainer(tr, spec, page="dna", dataset="planted").to_bytes()


def test_a_pickle_that_runs_code_on_load_is_refused_and_the_code_never_runs(tmp_path):
    flag = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": 1, "spec": {"kind": "logreg"}, "state_dict": RunsCode(flag)}, buf)
    with pytest.raises(BundleError, match="could run code") as e:
        load_bundle(buf.getvalue(), filename="evil.pt")
    assert "'evil.pt'" in str(e.value) and "nothing in it was run" in str(e.value)
    # a plain pickle file is refused before anything is unpickled
    with pytest.raises(BundleError, match="raw Python pickle"):
        load_bundle(pickle.dumps({"x": RunsCode(flag)}))
    assert not flag.exists()
    # and so is a file on disk
    path = tmp_path / "evil2.pt"
    torch.save([RunsCode(flag)], path)
    with pytest.raises(BundleError, match="could run code"):
        load_bundle(path)
    assert not flag.exists()


def test_truncated_and_damaged_files_get_clear_errors(tmp_path):
    raw = _cnn_bundle_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 100):
        with pytest.raises(BundleError, match="incomplete or damaged|damaged") as e:
            load_bundle(raw[:cut], filename="model.pt")
        assert "again" in e.value.hint
    # one flipped byte inside the weights: the checksum catches it
    zf = zipfile.ZipFile(io.BytesIO(raw))
    info = [i for i in zf.infolist() if "/data/" in i.filename][0]
    flipped = bytearray(raw)
    h = info.header_offset
    name_len, extra_len = int.from_bytes(raw[h + 26:h + 28], "little"), int.from_bytes(raw[h + 28:h + 30], "little")
    pos = h + 30 + name_len + extra_len + 2          # a byte of the first tensor's data
    flipped[pos] ^= 0xFF
    with pytest.raises(BundleError, match="damaged"):
        load_bundle(bytes(flipped))
    with pytest.raises(BundleError, match="empty"):
        load_bundle(b"")


def test_a_bundle_from_another_model_family_is_named():
    tr, spec, _, _ = make_run("lstm")
    raw = bundle_from_trainer(tr, spec, page="seq", dataset="planted tokens").to_bytes()
    with pytest.raises(BundleError) as e:
        load_bundle(raw, expect_kinds=("cnn", "logreg"))
    msg = str(e.value)
    assert "RNN" in msg and "LSTM" in msg and "CNN or Logistic regression" in msg and "Sequence models" in msg
    # an LSTM's weights under a CNN's spec (files mixed from two models)
    obj = torch.load(io.BytesIO(raw), weights_only=True)
    cnn = torch.load(io.BytesIO(_cnn_bundle_bytes()), weights_only=True)
    obj["spec"] = cnn["spec"]
    buf = io.BytesIO()
    torch.save(obj, buf)
    with pytest.raises(BundleError, match="do not fit the Logistic regression") as e:
        load_bundle(buf.getvalue())
    assert "different model family" in e.value.hint


def _resave(raw, **changes):
    obj = torch.load(io.BytesIO(raw), weights_only=True)
    obj.update(changes)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_newer_unknown_and_foreign_files():
    raw = _cnn_bundle_bytes()
    with pytest.raises(BundleError, match="newer playground") as e:
        load_bundle(_resave(raw, format_version=99, library_version="9.0.0"))
    assert "9.0.0" in str(e.value) and "Update" in e.value.hint
    with pytest.raises(BundleError, match="family 'quantum_net'"):
        load_bundle(_resave(raw, spec={"kind": "quantum_net", "qubits": 3}))
    with pytest.raises(BundleError, match="unknown task"):
        load_bundle(_resave(raw, task="clustering"))
    # a bare state_dict, an ESM-2 checkpoint, a CSV, random bytes
    buf = io.BytesIO()
    torch.save(build_model(LogisticRegressionSpec(length=10)).state_dict(), buf)
    with pytest.raises(BundleError, match="bare PyTorch state_dict"):
        load_bundle(buf.getvalue())
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(2)}, "cfg": {"model": {"encoder_layers": 6}}}, buf)
    with pytest.raises(BundleError, match="ESM-2 checkpoint"):
        load_bundle(buf.getvalue())
    with pytest.raises(BundleError, match="text file"):
        load_bundle(b"id,sequence\ns1,ACGT\n")
    with pytest.raises(BundleError, match="not a PyTorch file"):
        load_bundle(bytes(range(256)) * 4)
    with pytest.raises(BundleError, match="zip archive but not a PyTorch file"):
        zbuf = io.BytesIO()
        with zipfile.ZipFile(zbuf, "w") as z:
            z.writestr("notes.txt", "hello")
        load_bundle(zbuf.getvalue())
    # a tensor hidden where plain data belongs
    with pytest.raises(BundleError, match="plain data"):
        load_bundle(_resave(raw, training={"lr": torch.zeros(3)}))


def test_saving_to_a_file_and_loading_by_path(tmp_path):
    tr, spec, _, _ = make_run("logreg")
    b = bundle_from_trainer(tr, spec, page="dna", dataset="planted CTCF")
    path = tmp_path / b.file_name()
    assert path.name.endswith(".pt") and "logreg" in path.name
    b.save(path)
    back = load_bundle(path)
    assert isinstance(back, Bundle) and back.dataset == "planted CTCF"
    rows = dict(back.summary())
    assert rows["Family"] == "Logistic regression" and "one-hot DNA, length 30" == rows["Input"]
    with pytest.raises(BundleError, match="Cannot open"):
        load_bundle(tmp_path / "missing.pt")


def test_input_spec_is_checked():
    with pytest.raises(BundleError, match="unknown input kind"):
        InputSpec(kind="pixels")
    b = dataclasses.replace(InputSpec(), alphabet="protein", length=None, kind="tokens", max_length=500)
    assert "protein tokens, up to 500" in b.describe()
