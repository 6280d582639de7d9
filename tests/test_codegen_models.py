"""'PyTorch code' for every architecture: the script runs as is, its loss goes down, it reproduces
the page's run on the page's own data (the same train / validation / test sequences, the same
validation loss every epoch, the same test score, scored once at the end), and its model code loads
a downloaded bundle's weights."""
import os
import re
import subprocess
import sys
import types

import pytest
import torch

from playground import TrainConfig, Trainer
from playground.bundle import InputSpec, bundle_from_trainer
from playground.codegen import model_source, script_for_bundle, script_for_trainer, sequence_script, toy_script
from playground.data import dna
from playground.models import MLPSpec, build_model
from playground.models.cnn import CNNSpec, LogisticRegressionSpec
from playground.models.hybrid import HybridSpec, TokenCNNSpec
from playground.models.rnn import RNNSpec
from playground.models.transformer import TransformerSpec

CFG = TrainConfig(optimizer="adam", lr=0.01, batch_size=32, seed=0)


def run_script(src, tmp_path, *args, name="train_model.py"):
    path = tmp_path / name
    path.write_text(src)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}   # small models: one thread is fastest (and CI has 2 cores)
    out = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=240,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def losses(out):
    """The validation losses the script printed, epoch by epoch."""
    return [float(m) for m in re.findall(r"validation loss ([0-9.]+)", out)]


def held_out_loss(out):
    """The loss of the one look at the held-out test set."""
    return float(re.search(r"test \(held out, scored once\): loss ([0-9.]+)", out).group(1))


@pytest.mark.parametrize("name, spec, task, inp, classes", [
    ("cnn", CNNSpec(length=40, channels=(16,), kernel_sizes=(8,), pool="max", pool_size=2, dense=(16,), n_outputs=3),
     "multiclass", InputSpec("one_hot", "dna", length=40), ["AP-1", "GATA", "SP1"]),
    ("lstm", RNNSpec(cell="lstm", vocab_size=22, embed_dim=8, hidden=16, n_outputs=1), "regression",
     InputSpec("tokens", "protein"), []),
    ("transformer", TransformerSpec(vocab_size=22, d_model=16, heads=2, layers=1, ff=32, pooling="per_position",
                                    n_outputs=3), "per_residue", InputSpec("tokens", "protein"), ["H", "E", "C"]),
])
def test_generated_code_runs_and_its_loss_goes_down(name, spec, task, inp, classes, tmp_path):
    src = sequence_script(spec, CFG, task=task, input=inp, class_names=classes, epochs=6, generate=(300, 40))
    assert f"class {type(spec).__name__}" in src and "def forward" in src
    out = run_script(src, tmp_path, name=f"train_{name}.py")
    ls = losses(out)
    assert len(ls) >= 3 and ls[-1] < ls[0] * 0.95, out
    assert (tmp_path / "trained_model.pt").exists()


def test_the_script_reproduces_the_pages_run_and_loads_its_bundle(tmp_path):
    ds = dna.planted_motif("CTCF", n=160, length=30, seed=4)
    spec = CNNSpec(length=30, channels=(8,), kernel_sizes=(6,), dense=(8,), dropout=0.2, batch_norm=True)
    cfg = TrainConfig(optimizer="adamw", lr=0.01, batch_size=16, seed=4, regularization="l2", reg_rate=0.001)
    tr = Trainer(build_model(spec, 4), ds.split(0.7, 4, 0.15), cfg)
    tr.run_epochs(3)
    src = script_for_trainer(tr, spec, epochs=3)
    for part in ("train", "val", "test"):      # the page's own sequences, each in its part
        assert ds.seqs[int(tr.data.meta[f"{part}_idx"][0])] in src.split(f"{part.upper()}_SEQS = [")[1].split("]")[0]
    assert "split(seqs, labels, 0.7, 0.15, SEED)" in src      # a DATA_CSV file is split with the page's shares
    out = run_script(src, tmp_path)
    assert losses(out) == pytest.approx([h["val_loss"] for h in tr.history], abs=6e-5)
    test = tr.score_test()
    assert held_out_loss(out) == pytest.approx(test["loss"], abs=1e-6)
    assert float(re.search(r"accuracy ([0-9.]+)", out).group(1)) == pytest.approx(test["accuracy"], abs=1e-6)
    bundle_from_trainer(tr, spec, page="dna", dataset="planted").save(tmp_path / "model.pt")
    out = run_script(src, tmp_path, "--weights", "model.pt")
    assert float(re.search(r"validation loss ([0-9.]+)", out).group(1)) == pytest.approx(tr.latest["val_loss"], abs=1e-6)
    assert held_out_loss(out) == pytest.approx(test["loss"], abs=1e-6)


SPECS = [
    ("cnn", CNNSpec(length=30, channels=(8, 8), kernel_sizes=(5, 3), padding="same", batch_norm=True, pool="adaptive",
                    pool_output=2, dense=(8,), n_outputs=1), InputSpec("one_hot", "dna", length=30)),
    ("logreg", LogisticRegressionSpec(length=30), InputSpec("one_hot", "dna", length=30)),
    ("mlp", MLPSpec(120, (8,), "relu", 1), InputSpec("one_hot", "dna", length=30)),
    ("gru", RNNSpec(cell="gru", vocab_size=6, embed_dim=8, hidden=8, layers=2, output="last"), InputSpec("tokens", "dna")),
    ("transformer", TransformerSpec(vocab_size=6, d_model=16, heads=4, layers=2, ff=16, pooling="cls",
                                    positional="learned", max_len=40), InputSpec("tokens", "dna")),
    ("hybrid", HybridSpec(vocab_size=5, embed_dim=8, conv1_channels=8, conv2_channels=16, pool_positions=8, heads=2,
                          ff=16, layers=1, hidden=8, positional="sinusoidal", n_outputs=1), InputSpec("tokens", "dna")),
    ("token_cnn", TokenCNNSpec(vocab_size=5, embed_dim=8, channels=(8, 8), kernel=3, n_outputs=1),
     InputSpec("tokens", "dna")),
]


@pytest.mark.parametrize("name, spec, inp", SPECS, ids=[s[0] for s in SPECS])
def test_generated_model_code_is_the_playgrounds_model(name, spec, inp):
    """The copied model code, run on its own, builds the same network: same initial weights from the
    seed, and a playground state_dict loads into it with identical outputs."""
    src = sequence_script(spec, CFG, task="binary", input=inp, class_names=["no", "yes"], epochs=1, generate=(40, 30))
    mod = types.ModuleType(f"generated_{name}")
    sys.modules[mod.__name__] = mod          # dataclasses look their module up while the class is made
    try:
        exec(compile(src, "generated.py", "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    ns = mod.__dict__
    d = spec.to_dict()
    d.pop("kind")
    torch.manual_seed(5)
    theirs = ns[type(spec).__name__](**d).build()
    ours = build_model(spec, 5)
    for (k1, v1), (k2, v2) in zip(theirs.state_dict().items(), ours.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    theirs.load_state_dict(ours.state_dict())
    seqs = dna.planted_motif("CTCF", n=12, length=30, seed=0).seqs
    x = ns["one_hot"](seqs, 30) if inp.kind == "one_hot" else ns["tokenize"](seqs)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        assert torch.allclose(theirs(x), ours(x), atol=1e-6)


def test_script_for_a_bundle_and_large_data_are_generated_not_embedded(tmp_path):
    ds = dna.planted_motif("CTCF", n=2000, length=250, seed=0)     # 500,000 letters: too big to embed
    spec = LogisticRegressionSpec(length=250)
    tr = Trainer(build_model(spec, 0), ds.split(0.8, 0), CFG)
    src = script_for_trainer(tr, spec)
    assert "too large to embed" in src and "TRAIN_SEQS" not in src and "def make_data" in src
    b = bundle_from_trainer(tr, spec, page="dna", dataset="big")
    src = script_for_bundle(b)
    assert "LENGTH = 250" in src and "--weights" in src
    compile(src, "bundle_script.py", "exec")


def test_model_source_copies_helpers_and_strips_the_registry():
    imports, code = model_source(TransformerSpec())
    assert "def padding_mask" in code and "class MultiHeadSelfAttention" in code and "def sinusoidal_encoding" in code
    assert "@register" not in code and "(ModelSpec)" not in code and "playground" not in imports
    # the MLP page's generator still works (the basics page uses it)
    assert "class MLP" in toy_script("circle", 100, 0.0, 0.5, ["x1", "x2"], MLPSpec(2, (3,), "relu", 1), CFG)
    with pytest.raises(ValueError, match="one-hot and token"):
        sequence_script(spec=MLPSpec(), config=CFG, task="binary", input=InputSpec("features", None))


@pytest.mark.slow
def test_esm_head_script_reproduces_the_head_on_the_pages_proteins(tmp_path):
    """fair-esm embeds the page's proteins in the script (here ESM-2 with the page's random weights,
    offline); the head trains as on the page and ends at the page's test loss."""
    from playground import esm
    from playground.data import protein

    handle = esm.random_model("esm2_t6_8M_UR50D", seed=0)
    ps = protein.solubility_set(n=40, min_len=20, max_len=40, seed=6)
    base = protein.to_split(ps, "random", 0.7, 6, val_fraction=0.15)
    data = esm.head_split(handle, ps.seqs, base)
    spec = esm.make_head_spec(handle, data, head="mlp", hidden=8)
    tr = Trainer(build_model(spec, 0), data, TrainConfig(optimizer="adam", lr=0.01, batch_size=8, seed=0))
    tr.run_epochs(3)
    seqs = []
    for part in ("train", "val", "test"):
        idx = base.meta[f"{part}_idx"]
        seqs += [[ps.seqs[i] for i in idx], [int(ps.y[i]) for i in idx]]
    src = script_for_trainer(tr, spec, epochs=3, sequences=tuple(seqs))
    assert "RANDOM_ESM_SEED = 0" in src and "class ESMHead" in src and "esm.pretrained" in src
    assert "VAL_SEQS = [" in src
    out = run_script(src, tmp_path, name="train_esm_head.py")
    assert losses(out) == pytest.approx([h["val_loss"] for h in tr.history], abs=2e-3)
    assert held_out_loss(out) == pytest.approx(tr.score_test()["loss"], abs=2e-3)
