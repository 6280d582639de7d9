"""The convolution by hand (playground.convolution, re-exported by playground.interpret)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from playground.convolution import (ConvolutionError, consensus_filter, convolve_by_hand, grid_filter, grid_text,
                                    learned_filters, log_odds, motif_filter, output_length, pad_filters)
from playground.interpret import convolve_by_hand as reexported


def test_the_workshop_example():
    r = reexported("ACCGTCACCTA", "CCG")
    assert r.feature_maps[0].tolist() == [1, 3, 1, 0, 1, 1, 1, 2, 1]
    assert r.products.shape == (1, 9, 4, 3) and r.feature_maps.shape == (1, 9) and r.pooled is None
    # window 2 is C C G: the products are the filter itself, and they sum to 3
    assert r.window(1)["letters"] == "CCG" and r.products[0, 1].sum() == 3
    np.testing.assert_array_equal(r.products[0, 1], consensus_filter("CCG"))


def test_two_filters_relu_pool_and_flatten_with_the_formula():
    r = convolve_by_hand("ACCGTCACCTA", ["CCG", "TTA"], pool=2)
    assert r.feature_maps.tolist() == [[1, 3, 1, 0, 1, 1, 1, 2, 1], [0, 0, 0, 1, 2, 0, 0, 0, 2]]
    assert r.pooled.tolist() == [[3, 1, 1, 2], [0, 1, 2, 0]]
    assert r.flattened.tolist() == [3, 1, 1, 2, 0, 1, 2, 0]
    text = r.formula
    assert "floor((11 + 2·0 − 3) / 1) + 1 = 9" in text and "floor(9 / 2) = 4" in text and "2 × 4 = 8" in text
    assert r.torch_difference() == 0.0


def test_bias_relu_padding_and_stride_shapes():
    r = convolve_by_hand("ACCGTCACCTA", "CCG", bias=-1.5, padding=2, stride=2)
    assert r.n_windows == output_length(11, 3, 2, 2) == 7
    assert (r.relu >= 0).all() and r.feature_maps.min() == -1.5       # a window with no match: only the bias
    w = r.window(0)
    assert w["positions"] == [0, 0, 1] and w["letters"] == "··A"       # two padding columns, then base 1


def test_iupac_letters_spread_their_weight():
    w = consensus_filter("NRC")
    np.testing.assert_allclose(w[:, 0], 0.25)
    np.testing.assert_allclose(w[:, 1], [0.5, 0, 0.5, 0])
    assert convolve_by_hand("AGC", "NRC").feature_maps[0].tolist() == [0.25 + 0.5 + 1]


@pytest.mark.parametrize("seed", range(6))
def test_equals_torch_conv1d_and_max_pool1d_on_random_filters_and_sequences(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(8, 60))
    seq = "".join(rng.choice(list("ACGTN"), L, p=[0.24, 0.24, 0.24, 0.24, 0.04]))
    n_f, k = int(rng.integers(1, 5)), int(rng.integers(1, 8))
    w = rng.normal(size=(n_f, 4, k))
    b = rng.normal(size=n_f)
    padding, stride, pool = int(rng.integers(0, 4)), int(rng.integers(1, 4)), 2
    r = convolve_by_hand(seq, w, bias=b, pool=pool, padding=padding, stride=stride)
    from playground.encoding import one_hot

    x = one_hot(seq).double()
    conv = F.conv1d(x, torch.tensor(w), torch.tensor(b), stride=stride, padding=padding)[0].numpy()
    np.testing.assert_allclose(r.feature_maps, conv, atol=1e-12)
    np.testing.assert_allclose(r.pooled, F.max_pool1d(torch.relu(torch.tensor(conv[None])), 2)[0].numpy(), atol=1e-12)
    np.testing.assert_allclose(r.products.sum(axis=(2, 3)) + b[:, None], conv, atol=1e-12)
    assert r.torch_difference() < 1e-12


def test_friendly_errors_name_the_position_and_letter():
    with pytest.raises(ConvolutionError, match=r"position 3: 'X'"):
        convolve_by_hand("ACXGT", "CCG")
    with pytest.raises(ConvolutionError, match=r"position 2: 'Z'.*replace it with N"):
        convolve_by_hand("ACCGT", "CZG")
    with pytest.raises(ConvolutionError, match=r"filter 1 \(CC\) is 2 wide, filter 2 \(CCGT\) is 4 wide"):
        convolve_by_hand("ACCGT", ["CC", "CCGT"])
    with pytest.raises(ConvolutionError, match="no window fits"):
        convolve_by_hand("AC", "CCG")
    with pytest.raises(ConvolutionError, match="Max-pool size 5"):
        convolve_by_hand("ACGTA", "CC", pool=5)
    with pytest.raises(ConvolutionError, match="shape"):
        convolve_by_hand("ACGTA", np.ones((3, 2)))


def test_grids_motifs_and_learned_filters():
    g = grid_filter("1, 0, 0; 0, 1, 1\n0 0 0\n0 0 0")
    np.testing.assert_array_equal(g, consensus_filter("ACC"))
    assert grid_filter(grid_text(g)).tolist() == g.tolist()
    with pytest.raises(ConvolutionError, match=r"row G, column 2: 'x'"):
        grid_filter([[1, 0], [0, 1], [0, "x"], [0, 0]])
    with pytest.raises(ConvolutionError, match="3 row"):
        grid_filter([[1], [0], [0]])
    with pytest.raises(ConvolutionError, match="different lengths"):
        grid_filter([[1, 0], [0], [0, 0], [0, 0]])
    ctcf, label = motif_filter("CTCF")
    assert ctcf.shape == (4, 19) and "MA0139.1" in label and np.isfinite(ctcf).all()
    np.testing.assert_allclose(log_odds(np.full((4, 2), 0.25)), 0.0)
    padded, added = pad_filters(["CCG", ctcf])
    assert padded.shape == (2, 4, 19) and added == [16, 0]

    from playground.models.cnn import CNNSpec
    from playground.models import build_model

    model = build_model(CNNSpec(length=20, channels=(3,), kernel_sizes=(5,), dense=(), n_outputs=1), 0)
    w, b = learned_filters(model)
    assert w.shape == (3, 4, 5) and b.shape == (3,)
    x = torch.zeros(1, 4, 20)
    x[0, 0] = 1.0
    r = convolve_by_hand("A" * 20, w, bias=b)
    np.testing.assert_allclose(r.feature_maps, model.first_conv(x)[0].detach().double().numpy(), atol=1e-5)
    with pytest.raises(ConvolutionError, match="no convolution filters"):
        learned_filters(torch.nn.Linear(3, 1))
