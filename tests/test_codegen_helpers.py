"""The helpers every exported script carries (``playground.codegen_helpers``, copied into the
scripts by source) agree with the library: the three-way split is the page's, the test score is
``metrics.compute``'s, and per-residue labels (masked residues included) are the page's targets."""

import numpy as np
import pytest
import torch

from playground import TrainConfig, Trainer, metrics
from playground.bundle import InputSpec
from playground.codegen import helper_source, script_for_trainer, sequence_script
from playground.data import protein
from playground.data.split import SplitData
from playground.models import build_model
from playground.models.hybrid import TokenCNNSpec
from tests.conftest import load_source

CFG = TrainConfig(optimizer="adam", lr=0.01, batch_size=8, seed=0)


def helpers(task, class_names=()):
    """The helpers as a script has them, with its constants."""
    imports, code = helper_source("split", "targets", "evaluate", "score")
    ns = {"TASK": task, "CLASS_NAMES": list(class_names), "LETTERS": "ACGT"}
    exec(compile("from __future__ import annotations\n" + imports + "\n" + code, "helpers.py", "exec"), ns)
    return ns


def load(src, name="generated_helpers"):
    return load_source(src, name)


def test_the_copied_helpers_need_nothing_from_the_playground():
    imports, code = helper_source("split", "read_csv", "tokenize", "one_hot", "targets", "evaluate", "score")
    assert "playground" not in imports and "import playground" not in code
    assert "def split_three" in code and "def per_residue_targets" in code and "def loss_function" in code


@pytest.mark.parametrize("task, out, y", [
    ("binary", torch.randn(40, 1), (torch.rand(40) < 0.4).float()),
    ("multiclass", torch.randn(30, 4), torch.randint(0, 4, (30,))),
    ("regression", torch.randn(25, 1), torch.randn(25)),
    ("per_residue", torch.randn(6, 9, 3), torch.where(torch.rand(6, 9) < 0.3, -100, torch.randint(0, 3, (6, 9)))),
])
def test_score_is_the_pages_test_score(task, out, y):
    """``score`` (the script's one look at the test set) gives the loss and headline metric the
    page's ``Trainer.score_test`` gives for the same outputs."""
    ns = helpers(task, ["H", "E", "C"] if task == "per_residue" else [])
    model = torch.nn.Identity()
    got = ns["score"](model, out, y)
    want = metrics.compute(task, out.numpy(), y.numpy())
    headline = metrics.HEADLINE[task]
    assert set(got) == {"loss", headline}
    assert got[headline] == pytest.approx(want[headline], abs=1e-6)
    from playground.train import loss_function

    assert got["loss"] == pytest.approx(loss_function(task)(out, y).item(), abs=1e-7)
    assert ns["evaluate"](model, out, y) == got["loss"]


def test_masked_residues_keep_their_place_in_the_script():
    """A per-residue set with unlabelled residues inside the sequences (a mask column): the script
    lists the labels with a placeholder at those residues, and its targets are the page's, -100
    where the page has -100, so the script trains on the same residues."""
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), int(n))) for n in rng.integers(8, 15, 30)]
    labels = ["".join(rng.choice(list("HEC"), len(s))) for s in seqs]
    masks = ["".join("0" if rng.random() < 0.25 else "1" for _ in s) for s in seqs]
    x = protein.tokenize(seqs, protein.PROTEIN, max(map(len, seqs)))
    y = torch.from_numpy(protein.per_residue_targets(labels, ["H", "E", "C"], x.shape[1], masks))
    assert (y[:, 0] == -100).any() and (y[:, 1:7] == -100).any()     # masked first and inner residues
    data = SplitData.from_arrays(x, y.numpy(), "per_residue", 0.6, 0, 0.2, n_classes=3, class_names=["H", "E", "C"])
    spec = TokenCNNSpec(vocab_size=22, embed_dim=4, channels=(4,), kernel=3, pooling="per_position", n_outputs=3)
    tr = Trainer(build_model(spec, 0), data, CFG)
    src = script_for_trainer(tr, spec, InputSpec("tokens", "protein"), epochs=1)
    ns = load(src)
    for part in ("TRAIN", "VAL", "TEST"):
        x_part, y_part = data.part(part.lower())
        seqs_in, labels_in = ns[f"{part}_SEQS"], ns[f"{part}_LABELS"]
        assert all(len(lab) <= len(s) for lab, s in zip(labels_in, seqs_in))
        assert torch.equal(ns["tokenize"](seqs_in, x.shape[1]), x_part)
        assert torch.equal(ns["targets"](labels_in, x.shape[1]), y_part)


def test_the_generated_task_splits_like_the_page():
    """Without the page's data (too large to embed), the script's generated sequences are split
    three ways, stratified by class, as ``SplitData.from_arrays`` splits a page's set."""
    src = sequence_script(TokenCNNSpec(vocab_size=6, embed_dim=4, channels=(4,), kernel=3, n_outputs=3), CFG,
                          task="multiclass", input=InputSpec("tokens", "dna"), class_names=["a", "b", "c"],
                          epochs=1, generate=(90, 20), train_fraction=0.7, val_fraction=0.2)
    assert "split(seqs, labels, 0.7, 0.2, SEED)" in src
    ns = load(src)
    seqs, labels = ns["make_data"](90, 20, 0)
    parts = ns["split"](seqs, labels, 0.7, 0.2, 0)
    page = SplitData.from_arrays(np.zeros((90, 1), np.float32), np.array(labels), "multiclass", 0.7, 0, 0.2).meta
    for (_, part_labels), name in zip(parts, ("train", "val", "test")):
        assert part_labels == [labels[i] for i in page[f"{name}_idx"]]
        assert sorted(set(part_labels)) == [0, 1, 2]          # stratified: every class in every part
