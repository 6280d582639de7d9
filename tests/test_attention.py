"""Attention: rows sum to 1, padded keys get weight 0, the maps and the step-by-step walkthrough use the
model's real numbers, positional encodings, and the figures built from them."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from playground.attention import (attention_maps, attention_steps, has_attention, motif_attention,
                                  positional_encoding, positional_kind)
from playground.encoding import DNA, tokenize
from playground.models import RNNSpec, TransformerSpec, build_model
from playground.models.hybrid import HYBRID_SMALL
from playground.models.transformer import MultiHeadSelfAttention, sinusoidal_encoding
from playground.plots.attention import (attention_grid_figure, attention_heatmap_figure, matrix_figure,
                                        positional_encoding_figure)

SEQS = ["ACGTACGTTGCAAC", "GGCATT", "TTTACGNNAC"]


def _batch():
    return tokenize(SEQS, DNA, 16)          # right-padded to 16 with zeros


@pytest.mark.parametrize("spec", [TransformerSpec(), TransformerSpec(pooling="cls", norm="post", positional="learned"),
                                  dataclasses.replace(HYBRID_SMALL, vocab_size=5, n_outputs=1)],
                         ids=["transformer", "transformer-cls-post", "hybrid"])
def test_attention_rows_sum_to_one_and_padded_keys_get_zero_weight(spec):
    model = build_model(spec, 0)
    x = _batch()
    weights = model.attention(x)
    assert len(weights) == 2
    for w in weights:
        B, H, L, _ = w.shape
        assert torch.allclose(w.sum(-1), torch.ones(B, H, L), atol=1e-5)
        assert (w >= 0).all()
    if spec.kind == "transformer":
        pad = x == 0
        if spec.pooling == "cls":
            pad = torch.cat([torch.zeros(len(x), 1, dtype=torch.bool), pad], 1)
        for w in weights:
            keys_pad = pad[:, None, None, :].expand_as(w)
            assert torch.all(w[keys_pad] == 0)
            assert torch.all(w[~keys_pad] > 0)
    else:
        # the hybrid pools each sequence over its own length: no pooled position is padding, and a
        # padded sequence's attention is the one it gets alone; an all-padding row gets zero weight
        _, pad = model.pooled_features(x)
        assert not pad.any()
        for i, seq in enumerate(SEQS):
            for w, alone in zip(weights, model.attention(tokenize([seq], DNA))):
                assert torch.allclose(w[i], alone[0], atol=1e-6), seq
        empty = model.attention(torch.cat([x, torch.zeros(1, x.shape[1], dtype=x.dtype)]))
        assert all(torch.all(w[-1] == 0) for w in empty)


def test_all_padding_sequence_gives_zeros_not_nan():
    att = MultiHeadSelfAttention(8, 2)
    x = torch.randn(1, 4, 8)
    out, w = att(x, torch.ones(1, 4, dtype=torch.bool))
    assert torch.isfinite(out).all() and torch.all(w == 0)


def test_our_attention_equals_torch_multihead_attention():
    """The readable code computes exactly what nn.MultiheadAttention computes."""
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(16, 4).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q.weight, ours.k.weight, ours.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q.bias, ours.k.bias, ours.v.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(3, 7, 16)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 4:] = True
    pad[2, 6:] = True
    out, w = ours(x, pad)
    out_ref, w_ref = ref(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    assert torch.allclose(out, out_ref, atol=1e-5)
    assert torch.allclose(w, w_ref, atol=1e-6)


def test_attention_maps_cut_padding_and_label_the_axes():
    model = build_model(TransformerSpec(pooling="cls"), 0)
    maps = attention_maps(model, "ACGTN", DNA)
    assert maps.weights.shape == (2, 4, 6, 6)
    assert maps.labels == ["CLS", "A1", "C2", "G3", "T4", "N5"]
    assert maps.head_average().shape == (2, 6, 6)
    assert np.allclose(maps.weights.sum(-1), 1, atol=1e-5)
    # the same sequence padded inside a batch gives the same map
    padded = attention_maps(model, tokenize(["ACGTN"], DNA, 12)[0], DNA)
    assert np.allclose(maps.weights, padded.weights, atol=1e-5)
    win = maps.window(1, 4)
    assert win.labels == ["A1", "C2", "G3"] and win.weights.shape == (2, 4, 3, 3)


def test_hybrid_maps_say_which_bases_each_position_stands_for():
    model = build_model(dataclasses.replace(HYBRID_SMALL, vocab_size=5, n_outputs=1, pool_positions=16), 0)
    seq = "ACGT" * 20
    maps = attention_maps(model, seq, DNA)
    assert maps.kind == "pooled" and maps.weights.shape == (2, 4, 16, 16)
    covered = set()
    for s, e in maps.spans:
        assert 0 <= s < e <= len(seq)
        covered |= set(range(s, e))
    assert covered == set(range(len(seq)))
    assert maps.positions_of(0, 5)[0] == 0 and maps.positions_of(75, 80)[-1] == 15


def test_motif_attention_is_measured_between_the_two_motifs():
    model = build_model(TransformerSpec(), 0)
    maps = attention_maps(model, "A" * 5 + "GATAAG" + "C" * 6 + "TGACTCA" + "T" * 5, DNA)
    res = motif_attention(maps, (5, 11), (17, 24))
    assert res["a_positions"] == list(range(5, 11)) and res["b_positions"] == list(range(17, 24))
    assert res["a_to_b"].shape == (2, 4) and np.all((res["a_to_b"] >= 0) & (res["a_to_b"] <= 1))
    w = maps.weights
    assert res["a_to_b"][1, 2] == pytest.approx(w[1, 2][5:11, 17:24].sum(1).mean())
    assert res["uniform_a_to_b"] == pytest.approx(7 / 29)
    with pytest.raises(ValueError, match="outside"):
        motif_attention(maps, (5, 11), (100, 110))


@pytest.mark.parametrize("spec", [TransformerSpec(), TransformerSpec(norm="post", pooling="cls", positional="learned"),
                                  dataclasses.replace(HYBRID_SMALL, vocab_size=5, n_outputs=1)],
                         ids=["pre-LN", "post-LN-cls", "hybrid"])
@pytest.mark.parametrize("layer, head", [(0, 0), (1, 3)])
def test_walkthrough_recomputes_the_models_own_attention(spec, layer, head):
    model = build_model(spec, 3)
    # train a few steps so the numbers are a trained model's, not the initial ones
    opt = torch.optim.Adam(model.parameters(), 0.01)
    x = tokenize(["ACGTACGTAC", "TTGACA"], DNA)
    for _ in range(3):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    steps = attention_steps(model, "ACGTTGCA", DNA, layer, head)
    n = len(steps.labels)
    assert steps.q.shape == (n, steps.d_k) and steps.scores.shape == (n, n)
    assert np.allclose(steps.scores, steps.q @ steps.k.T / np.sqrt(steps.d_k))
    assert np.allclose(steps.weights.sum(1), 1)
    assert np.allclose(steps.output, steps.weights @ steps.v)
    assert np.allclose(steps.q, steps.x @ steps.w_q + steps.b_q)
    assert steps.max_difference < 1e-5
    maps = attention_maps(model, "ACGTTGCA", DNA)
    assert np.allclose(maps.weights[layer, head], steps.weights, atol=1e-5)


def test_walkthrough_and_maps_refuse_models_without_attention():
    rnn = build_model(RNNSpec(), 0)
    assert not has_attention(rnn)
    with pytest.raises(ValueError, match="no attention"):
        attention_maps(rnn, "ACGT", DNA)
    with pytest.raises(ValueError, match="layer must be"):
        attention_steps(build_model(TransformerSpec(), 0), "ACGT", DNA, layer=5)


def test_sinusoidal_positional_encoding_follows_the_formula():
    pe = positional_encoding(TransformerSpec(d_model=16), 50)
    pos = np.arange(50)
    assert pe.shape == (50, 16)
    assert np.allclose(pe[:, 0], np.sin(pos), atol=1e-5)
    assert np.allclose(pe[:, 1], np.cos(pos), atol=1e-5)
    assert np.allclose(pe[:, 6], np.sin(pos / 10000 ** (6 / 16)), atol=1e-5)
    assert np.allclose(sinusoidal_encoding(7, 5)[:, 4].numpy(), np.sin(np.arange(7) / 10000 ** (4 / 5)), atol=1e-5)
    # a model uses the same matrix; 'none' adds zeros; 'learned' returns the model's own table
    m = build_model(TransformerSpec(d_model=16), 0)
    assert np.allclose(positional_encoding(m, 50), pe) and positional_kind(m) == "sinusoidal"
    assert not positional_encoding(TransformerSpec(positional="none"), 5).any()
    learned = build_model(TransformerSpec(positional="learned", d_model=8), 0)
    assert np.allclose(positional_encoding(learned, 4), learned.positions.table.weight[:4].detach().numpy())


def test_positions_matter_only_with_a_positional_encoding():
    """Without positions, attention + mean pooling cannot tell a sequence from a shuffled copy."""
    a, b = tokenize(["AACCGGTT"], DNA), tokenize(["TTGGCCAA"], DNA)
    none = build_model(TransformerSpec(positional="none"), 0).eval()
    sin = build_model(TransformerSpec(positional="sinusoidal"), 0).eval()
    with torch.no_grad():
        assert torch.allclose(none(a), none(b), atol=1e-5)
        assert not torch.allclose(sin(a), sin(b), atol=1e-4)


def test_figures_carry_the_numbers_and_labels():
    model = build_model(TransformerSpec(heads=2), 0)
    maps = attention_maps(model, "ACGTACGTAA", DNA)
    fig = attention_grid_figure(maps.weights, maps.labels, [[1, 2], [6, 7]])
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2 * 3                                   # 2 layers x (2 heads + average)
    assert np.allclose(np.asarray(heat[2].z), maps.weights[0].mean(0))
    assert np.allclose(np.asarray(heat[0].z), maps.weights[0, 0])
    assert "A1" in fig.layout.xaxis.ticktext
    assert len(fig.layout.shapes) == 2 * 6                      # two boxes per map
    json.loads(fig.to_json())                                   # serialisable for the page
    big = attention_heatmap_figure(maps.head_average()[0], maps.labels, "avg")
    assert np.allclose(np.asarray(big.data[0].z), maps.head_average()[0])
    assert big.layout.yaxis.title.text.startswith("query")
    steps = attention_steps(model, "ACGT", DNA)
    mf = matrix_figure(steps.q, steps.labels, [f"d{i}" for i in range(steps.d_k)], "Q")
    assert mf.data[0].text[0][0] == format(steps.q[0, 0], ".2f")
    pf = positional_encoding_figure(positional_encoding(model, 12))
    assert np.asarray(pf.data[0].z).shape == (12, 32)


@pytest.mark.parametrize("spec", [TransformerSpec(dropout=0.0), TransformerSpec(pooling="cls", norm="post", dropout=0.0),
                                  dataclasses.replace(HYBRID_SMALL, vocab_size=5, n_outputs=1, dropout=0.0)],
                         ids=["transformer", "transformer-cls-post", "hybrid"])
def test_fast_training_path_computes_the_same_as_the_readable_one(spec):
    """Training uses PyTorch's fused attention; the maps use the readable code: same numbers, same gradients."""
    x = _batch()
    m = build_model(spec, 0).eval()
    fast = m(x)
    h, pad, _ = m.encode(x, need_weights=True)
    pooled = h[:, 0] if getattr(m.spec, "pooling", "") == "cls" else (
        torch.nan_to_num(h.masked_fill(pad[..., None], float("-inf")).amax(1), neginf=0.0)
        if getattr(m.spec, "pooling", "") == "max" else
        (h * (~pad)[..., None]).sum(1) / (~pad).sum(1, keepdim=True))
    slow = m.head(pooled)
    assert torch.allclose(fast, slow, atol=1e-5)
    g_fast = torch.autograd.grad(fast.sum(), m.embed.weight)[0]
    g_slow = torch.autograd.grad(slow.sum(), m.embed.weight)[0]
    assert torch.allclose(g_fast, g_slow, atol=1e-5)
