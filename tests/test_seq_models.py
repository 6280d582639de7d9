"""Sequence models: RNN/LSTM/GRU, the Transformer, the hybrid CNN+Transformer and the token CNN;
padding, per-residue loss, the course presets, the run comparison, and the motif-grammar gap."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from playground import metrics as M
from playground.compare import Comparison, compare, default_specs, make_spec, results_table
from playground.data import protein as P
from playground.data.split import SplitData
from playground.encoding import DNA, PROTEIN, tokenize
from playground.models import RNNSpec, TransformerSpec, TokenCNNSpec, HybridSpec, build_model, count_parameters
from playground.models.base import spec_from_dict
from playground.models.hybrid import HYBRID_COURSE, HYBRID_SMALL, PROTEIN_CNN_COURSE
from playground.train import TrainConfig, Trainer, loss_function


def _padded_pair(alphabet=DNA, seed=0):
    """Three sequences of different lengths, tokenised at their own length and with extra padding."""
    rng = np.random.default_rng(seed)
    letters = alphabet.letters
    seqs = ["".join(rng.choice(list(letters), n)) for n in (23, 11, 17)]
    return seqs, tokenize(seqs, alphabet), tokenize(seqs, alphabet, 40)


# --------------------------------------------------------------------------------------------
# the course presets, layer for layer
def test_hybrid_course_preset_has_exactly_the_layers_of_the_notes():
    m = build_model(dataclasses.replace(HYBRID_COURSE, n_outputs=3), 0)
    assert isinstance(m.embed, nn.Embedding) and tuple(m.embed.weight.shape) == (5, 64)
    assert isinstance(m.conv1, nn.Conv1d)
    assert (m.conv1.in_channels, m.conv1.out_channels, m.conv1.kernel_size, m.conv1.padding) == (64, 128, (8,), (4,))
    assert (m.conv2.in_channels, m.conv2.out_channels, m.conv2.kernel_size, m.conv2.padding) == (128, 256, (4,), (2,))
    assert isinstance(m.act, nn.GELU)
    assert isinstance(m.pool, nn.AdaptiveMaxPool1d) and m.pool.output_size == 64
    layers = m.encoder.layers
    assert len(layers) == 2
    for layer in layers:
        att = layer.attention
        assert (att.d_model, att.heads, att.d_k) == (256, 8, 32)
        for lin in (att.q, att.k, att.v, att.out):
            assert tuple(lin.weight.shape) == (256, 256)
        ff1, ff2 = layer.feed_forward[0], layer.feed_forward[3]
        assert tuple(ff1.weight.shape) == (512, 256) and tuple(ff2.weight.shape) == (256, 512)
        assert layer.dropout.p == 0.1 and layer.feed_forward[2].p == 0.1
        assert layer.norm == "post"          # nn.TransformerEncoderLayer's default
    head = list(m.head)
    assert isinstance(head[0], nn.Linear) and (head[0].in_features, head[0].out_features) == (256, 128)
    assert isinstance(head[1], nn.GELU)
    assert isinstance(head[2], nn.Dropout) and head[2].p == 0.3
    assert isinstance(head[3], nn.Linear) and (head[3].in_features, head[3].out_features) == (128, 3)
    assert HYBRID_COURSE.positional == "none" and HYBRID_COURSE.pooling == "mean"


def test_hybrid_parameter_count_equals_the_notes_built_from_torch_modules():
    """The course code, with torch's own TransformerEncoder, has the same number of parameters."""
    classes = 2
    ref = nn.ModuleList([
        nn.Embedding(5, 64),
        nn.Conv1d(64, 128, kernel_size=8, padding=4),
        nn.Conv1d(128, 256, kernel_size=4, padding=2),
        nn.AdaptiveMaxPool1d(64),
        nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=256, nhead=8, dim_feedforward=512, dropout=0.1,
                                                         batch_first=True), num_layers=2, enable_nested_tensor=False),
        nn.Linear(256, 128), nn.Linear(128, classes)])
    ours = build_model(dataclasses.replace(HYBRID_COURSE, n_outputs=classes), 0)
    assert count_parameters(ours) == count_parameters(ref) == 1_284_674


@pytest.mark.parametrize("length", [37, 200, 300])
def test_hybrid_takes_any_length_and_n(length):
    m = build_model(dataclasses.replace(HYBRID_COURSE, n_outputs=2), 0).eval()
    seqs = ["".join(np.random.default_rng(length).choice(list("ACGTN"), length))]
    out = m(tokenize(seqs, DNA))
    assert out.shape == (1, 2) and torch.isfinite(out).all()


def test_protein_cnn_course_preset():
    m = build_model(PROTEIN_CNN_COURSE, 0)
    assert tuple(m.embed.weight.shape) == (21, 64) and m.embed.padding_idx == 0
    assert len(m.convs) == 2 and all(c.kernel_size == (5,) for c in m.convs)
    assert isinstance(m.act, nn.ReLU) and PROTEIN_CNN_COURSE.pooling == "mean"
    assert isinstance(m.head, nn.Linear) and m.head.in_features == m.convs[-1].out_channels
    x = tokenize(["MKTAYIAKQRQISFVKSHFSRQX", "MKV"], PROTEIN)
    assert m(x).shape == (2, 1)


def test_token_models_refuse_tokens_that_do_not_fit():
    dna_cnn = build_model(TokenCNNSpec(vocab_size=5, channels=(8,), kernel=3), 0)
    with pytest.raises(ValueError, match="protein fed to a DNA model"):
        dna_cnn(tokenize(["MKWV"], PROTEIN))


# --------------------------------------------------------------------------------------------
# padding is honoured everywhere
PADDING_SPECS = [
    TransformerSpec(pooling="mean"), TransformerSpec(pooling="cls", positional="learned", norm="post"),
    TransformerSpec(positional="none"),
    RNNSpec(cell="lstm", bidirectional=True, output="pooled"), RNNSpec(cell="gru", bidirectional=True, output="last"),
    RNNSpec(cell="rnn", bidirectional=False, output="last", layers=2),
    TokenCNNSpec(vocab_size=5, channels=(8, 8), kernel=5, pooling="max"),
    TokenCNNSpec(vocab_size=5, channels=(8,), kernel=4, pooling="mean"),
]


@pytest.mark.parametrize("spec", PADDING_SPECS, ids=lambda s: s.describe())
def test_extra_padding_does_not_change_the_output(spec):
    _, tight, loose = _padded_pair()
    m = build_model(spec, 1).eval()
    with torch.no_grad():
        a, b = m(tight), m(loose)
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


@pytest.mark.parametrize("spec", [TransformerSpec(pooling="per_position", n_outputs=3),
                                  RNNSpec(output="per_position", n_outputs=3),
                                  TokenCNNSpec(vocab_size=5, pooling="per_position", n_outputs=3, channels=(8,))],
                         ids=["transformer", "lstm", "cnn"])
def test_per_position_models_label_every_residue_and_ignore_padding(spec):
    seqs, tight, loose = _padded_pair()
    m = build_model(spec, 2).eval()
    with torch.no_grad():
        a, b = m(tight), m(loose)
    assert a.shape == (3, 23, 3) and b.shape == (3, 40, 3)
    for i, s in enumerate(seqs):
        assert torch.allclose(a[i, : len(s)], b[i, : len(s)], atol=1e-5)


def test_rnn_last_state_is_the_last_real_position_not_padding():
    """Many-to-one 'last' reads the state at each sequence's own end."""
    spec = RNNSpec(cell="gru", bidirectional=False, output="last", n_outputs=2)
    m = build_model(spec, 0).eval()
    seq = "ACGTTGCA"
    with torch.no_grad():
        alone = m(tokenize([seq], DNA))
        in_batch = m(tokenize([seq, seq + "ACGTACGTACGT"], DNA))[:1]
        states, last, _ = m.states(tokenize([seq], DNA, 20))
    assert torch.allclose(alone, in_batch, atol=1e-6)
    assert torch.allclose(last[0], states[0, len(seq) - 1], atol=1e-6)


def test_per_residue_loss_and_q3_ignore_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 3, requires_grad=True)
    y = torch.tensor([[0, 1, 2, -100, -100, -100], [2, 2, 1, 0, 1, -100]])
    loss = loss_function("per_residue")(logits, y)
    loss.backward()
    # no gradient reaches padded positions, and changing their logits changes nothing
    assert torch.all(logits.grad[y == -100] == 0) and torch.any(logits.grad[y != -100] != 0)
    changed = logits.detach().clone()
    changed[y == -100] = 100.0
    assert torch.isclose(loss_function("per_residue")(changed, y), loss.detach())
    keep = y != -100
    manual = nn.functional.cross_entropy(logits.detach()[keep], y[keep])
    assert torch.isclose(loss.detach(), manual)
    # Q3 counts only real residues: padded positions predicted "wrong" do not lower it
    pred = y.clone()
    pred[~keep] = 1
    assert M.q3(y.numpy(), pred.numpy()) == 1.0
    pred[0, 0] = 2
    assert M.q3(y.numpy(), pred.numpy()) == pytest.approx(7 / 8)


def test_trainer_per_residue_metrics_match_a_manual_q3():
    ps = P.secondary_structure_set(60, 20, 40, seed=3)
    data = P.to_split(ps, "random", 0.75, 3)
    spec = make_spec("cnn", "protein", data, {"channels": (16,), "kernel": 7})
    tr = Trainer(build_model(spec, 0), data, TrainConfig(lr=0.01, batch_size=16, seed=0, track_metrics=True))
    tr.run_epochs(2)
    out = tr.outputs(data.x_val).numpy()
    y = data.y_val.numpy()
    keep = y != -100
    manual = float((out.argmax(-1)[keep] == y[keep]).mean())
    assert keep.sum() < y.size          # there is padding to ignore
    assert tr.history[-1]["val_q3"] == pytest.approx(manual)
    # the held-out test set's Q3, scored once, by the same rule
    out, y = tr.outputs(data.x_test).numpy(), data.y_test.numpy()
    keep = y != -100
    assert tr.score_test()["q3"] == pytest.approx(float((out.argmax(-1)[keep] == y[keep]).mean()))


# --------------------------------------------------------------------------------------------
# specs
@pytest.mark.parametrize("spec", [*PADDING_SPECS, HYBRID_COURSE, HYBRID_SMALL, PROTEIN_CNN_COURSE],
                         ids=lambda s: s.kind)
def test_specs_round_trip_and_build_reproducibly(spec):
    again = spec_from_dict(spec.to_dict())
    assert again == spec
    a, b = build_model(spec, 5), build_model(again, 5)
    for (n1, p1), (n2, p2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.parametrize("bad, msg", [
    (lambda: TransformerSpec(d_model=30, heads=4), "divisible"),
    (lambda: TransformerSpec(positional="rotary"), "positional"),
    (lambda: RNNSpec(cell="transformer"), "cell"),
    (lambda: HybridSpec(conv2_channels=100, heads=8), "divisible"),
    (lambda: TokenCNNSpec(channels=()), "at least one"),
])
def test_bad_specs_say_what_is_wrong(bad, msg):
    with pytest.raises(ValueError, match=msg):
        bad()


def test_learned_positions_refuse_sequences_longer_than_the_table():
    m = build_model(TransformerSpec(positional="learned", max_len=10), 0)
    with pytest.raises(ValueError, match="longer than the learned positional table"):
        m(tokenize(["ACGT" * 4], DNA))


# --------------------------------------------------------------------------------------------
# run comparison
def test_comparison_trains_every_model_on_the_same_split_in_chunks():
    ps = P.solubility_set(120, 20, 40, seed=1)
    data = P.to_split(ps, "cluster", 0.75, 1)
    specs = default_specs("protein", data, ("cnn", "gru", "transformer", "hybrid"))
    cmp = Comparison(data, specs, epochs=2, config=TrainConfig(lr=0.003, batch_size=32), seed=4, data_key="prot")
    chunks = 0
    while not cmp.run_for(0.05):
        chunks += 1
        assert 0.0 <= cmp.progress <= 1.0
    assert chunks > 1 and cmp.progress == 1.0
    rows = results_table(cmp.runs)
    assert [r["model"] for r in rows] == ["CNN", "GRU", "Transformer", "Hybrid CNN+Transformer"]
    for r, run in zip(rows, cmp.runs):
        assert r["epochs"] == 2 and r["parameters"] > 100 and r["seconds"] > 0 and r["status"] == "done"
        assert 0.0 <= r["best validation accuracy"] <= 1.0
        assert [h["epoch"] for h in run.history] == [0, 1, 2]
    # same seed + same config -> the same numbers again
    again = compare(data, {"CNN": specs["CNN"]}, 2, TrainConfig(lr=0.003, batch_size=32), seed=4)
    assert again[0].history[-1]["val_loss"] == pytest.approx(cmp.runs[0].history[-1]["val_loss"])
    # the table's "best validation accuracy" is the best val_accuracy of the run's history
    best = max(h["val_accuracy"] for h in cmp.runs[0].history[1:])
    assert rows[0]["best validation accuracy"] == pytest.approx(best, abs=1e-4)


def test_per_residue_comparison_leaves_out_the_hybrid_and_explains_why():
    data = P.to_split(P.secondary_structure_set(40, 20, 30, seed=0), "random", 0.75, 0)
    assert "Hybrid CNN+Transformer" not in default_specs("protein", data)
    with pytest.raises(ValueError, match="cannot label every residue"):
        make_spec("hybrid", "protein", data, {})


# --------------------------------------------------------------------------------------------
# the point of attention: relating two positions far apart
@pytest.mark.slow
def test_hybrid_beats_a_single_narrow_conv_on_the_motif_grammar():
    """Motif grammar (GATA1 then AP-1 four bases later; each motif alone, or at another spacing,
    or in the other order is negative). A single conv of width 5 + global max pool sees no more
    than 5 bases at once, so it cannot tell whether the two motifs are 4 bases apart; the hybrid
    (conv -> attention with sinusoidal positions) can. Fixed seed, measured gap."""
    from playground.data import dna

    ds = dna.motif_grammar(n=2000, length=60, seed=0)
    data = SplitData.from_arrays(tokenize(ds.seqs, DNA).numpy(), ds.y, "binary", 0.8, 0)
    narrow = TokenCNNSpec(vocab_size=5, embed_dim=16, channels=(32,), kernel=5, pooling="max", n_outputs=1)
    hybrid = dataclasses.replace(HYBRID_SMALL, vocab_size=5, n_outputs=1, pool_positions=32)
    cnn_run, = compare(data, {"narrow CNN": narrow}, 8, TrainConfig(lr=0.003, batch_size=32), seed=0)
    hyb_run, = compare(data, {"hybrid": hybrid}, 8, TrainConfig(lr=0.001, batch_size=32), seed=0)
    print(f"best validation accuracy: narrow CNN {cnn_run.best:.3f}, hybrid {hyb_run.best:.3f}")
    assert hyb_run.best >= 0.88
    assert hyb_run.best - cnn_run.best >= 0.08
