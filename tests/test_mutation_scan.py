"""Mutation scans: the DNA in-silico mutagenesis against brute-force mutate-and-predict, and the
ESM-1v masked-marginal scan on a tiny ESM-2 against log-softmax differences computed by hand
with fair-esm's own forward pass; score_mutations' messages."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from playground import esm as E
from playground.data.parsing import SequenceFileError
from playground.interpret import in_silico_mutagenesis
from playground.models.base import build_model
from playground.models.cnn import CNNSpec
from playground.mutation import brute_force_scan, dna_mutation_scan, ism, read_dna, scan_csv, units_label, variants

# --------------------------------------------------------------------------------------------- DNA
SEQ = "ACGTTGCAGGCTAACGTTAGCCGATNACGT"     # 30 bases, one N


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    spec = CNNSpec(length=30, channels=(6,), kernel_sizes=(5,), pool="max", pool_size=2, dense=(8,), n_outputs=1)
    return build_model(spec, 0).eval()


@pytest.fixture(scope="module")
def cnn3():
    spec = CNNSpec(length=30, channels=(6,), kernel_sizes=(5,), pool="max", pool_size=2, dense=(8,), n_outputs=3)
    return build_model(spec, 1).eval()


def test_dna_scan_equals_brute_force(cnn):
    got = dna_mutation_scan(cnn, SEQ)
    ref = brute_force_scan(cnn, SEQ)
    assert got.shape == (30, 4)
    assert np.allclose(got, ref, atol=1e-5)
    own = np.array(["ACGT".find(c) for c in SEQ])
    assert np.all(got[own >= 0, own[own >= 0]] == 0)          # the sequence's own base
    assert np.all(got[SEQ.index("N")] != 0)                    # N: all four bases are mutations


def test_dna_scan_probability_units_and_classes(cnn, cnn3):
    p = dna_mutation_scan(cnn, SEQ, units="probability")
    assert np.allclose(p, brute_force_scan(cnn, SEQ, units="probability"), atol=1e-6)
    assert np.abs(p).max() <= 1
    for units in ("output", "probability"):
        got = dna_mutation_scan(cnn3, SEQ, target=2, units=units)
        assert np.allclose(got, brute_force_scan(cnn3, SEQ, target=2, units=units), atol=1e-5)
    with pytest.raises(ValueError, match="which class"):
        dna_mutation_scan(cnn3, SEQ)


def test_dna_scan_is_batched_and_pads_short_sequences(cnn):
    calls = []
    hook = cnn.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        got = dna_mutation_scan(cnn, SEQ[:20], length=30, batch_size=25)
    finally:
        hook.remove()
    # 3 variants x 20 positions (the 10 padding positions are never mutated) in 3 passes + the reference
    assert sorted(calls) == [1, 10, 25, 25] and got.shape == (20, 4)
    assert np.allclose(got, brute_force_scan(cnn, SEQ[:20], length=30), atol=1e-5)


def test_interpret_ism_is_the_batched_scan(cnn):
    from playground import encoding

    x = encoding.one_hot([SEQ])[0]
    pos, base = variants(x)
    assert len(pos) == 3 * 29 + 4 and pos[:3].tolist() == [0, 0, 0] and base[:3].tolist() == [1, 2, 3]
    a = in_silico_mutagenesis(cnn, x)
    assert a.shape == (4, 30) and np.allclose(a, ism(cnn, x).T)


def test_read_dna_friendly_errors():
    seq, notes = read_dna(">my seq\nacgt acgu\n10 ACGT", length=20)
    assert seq == "ACGTACGTACGT"
    assert any("my seq" in n for n in notes) and any("read as T" in n for n in notes)
    assert any("padding" in n for n in notes)
    with pytest.raises(SequenceFileError, match=r"position 5: 'X' is not a DNA letter"):
        read_dna("ACGTXACGT")
    with pytest.raises(SequenceFileError, match="has 12 bases; this model reads exactly 10"):
        read_dna("ACGTACGTACGT", length=10)
    with pytest.raises(SequenceFileError, match="empty"):
        read_dna("  \n")
    assert units_label("binary") == "Δ logit" and units_label("binary", "probability", "bound") == "Δ P(bound)"
    assert units_label("regression") == "Δ predicted value"
    assert scan_csv("AC", np.zeros((2, 4))).splitlines()[1] == "1,A,0,0,0,0"


# --------------------------------------------------------------------------------------------- ESM
PROT = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


@pytest.fixture(scope="module")
def tiny(tiny_esm_bytes):
    ckpt, reg = tiny_esm_bytes
    return E.load_checkpoint_bytes(ckpt, "esm2_tiny.pt", regression=reg)


def manual_scan(model, alphabet, seq):
    """Mask each position, run fair-esm's ESM2.forward, log-softmax, mutant minus wild type."""
    conv = alphabet.get_batch_converter()
    _, _, tokens = conv([("p", seq)])
    aa = [alphabet.get_idx(a) for a in E.AMINO_ACIDS]
    out = np.zeros((len(seq), 20))
    for i in range(len(seq)):
        t = tokens.clone()
        t[0, i + 1] = alphabet.mask_idx
        with torch.no_grad():
            lp = torch.log_softmax(model(t)["logits"][0, i + 1].double(), -1)
        out[i] = (lp[aa] - lp[tokens[0, i + 1]]).numpy()
    return out


def test_esm_scan_equals_manual_masked_marginals(tiny):
    ref = manual_scan(tiny.model, tiny.alphabet, PROT)
    seen = []
    got = E.mutation_scan(tiny, PROT, batch_size=8, progress=lambda d, t, m: seen.append((d, t)))
    assert got.shape == (len(PROT), 20)
    assert np.allclose(got, ref, atol=1e-5)
    assert seen[-1] == (len(PROT), len(PROT)) and len(seen) == 5            # 33 copies, 8 per pass
    wt = [E.AMINO_ACIDS.index(c) for c in PROT]
    assert np.all(got[np.arange(len(PROT)), wt] == 0)
    assert np.allclose(E.mutation_scan_naive(tiny, PROT), ref, atol=1e-5)
    mixed = E.mutation_scan(tiny, PROT, precision="mixed")
    assert np.abs(mixed - ref).max() < 0.05 * max(1.0, np.abs(ref).max())


def test_esm_scan_of_a_long_sequence_uses_windows(tiny, monkeypatch):
    monkeypatch.setattr(E, "MAX_RESIDUES", 12)
    monkeypatch.setattr(E, "_windows", lambda L, size=12, stride=6: [(0, 12), (6, 18), (12, 24), (21, 33)])
    got = E.mutation_scan(tiny, PROT)
    # each position is scored in the window where it is most central: 0-based 14 in 6-18, 16 in 12-24
    assert np.allclose(got[14], manual_scan(tiny.model, tiny.alphabet, PROT[6:18])[8], atol=1e-5)
    assert np.allclose(got[16], manual_scan(tiny.model, tiny.alphabet, PROT[12:24])[4], atol=1e-5)
    assert np.allclose(got[:3], manual_scan(tiny.model, tiny.alphabet, PROT[:12])[:3], atol=1e-5)


def test_score_mutations_ranks_and_explains_errors(tiny):
    scan = E.mutation_scan(tiny, PROT)
    rows = E.score_mutations(tiny, PROT, "K2E, a4g;Y5W  K2E")
    assert [r["mutation"] for r in rows] == sorted(["K2E", "A4G", "Y5W"], key=lambda m: -scan[
        int(m[1:-1]) - 1, E.AMINO_ACIDS.index(m[-1])])
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["log-ratio"] == pytest.approx(scan[int(rows[0]["mutation"][1:-1]) - 1,
                                                     E.AMINO_ACIDS.index(rows[0]["mutant"])], abs=1e-3)
    assert E.score_mutations(tiny, PROT, "K2E", scan=scan)[0]["log-ratio"] == pytest.approx(rows[[
        r["mutation"] for r in rows].index("K2E")]["log-ratio"])
    with pytest.raises(E.ESMError, match="A2G: position 2 is K, not A"):
        E.score_mutations(tiny, PROT, "A2G")
    with pytest.raises(E.ESMError, match=r"position 99 is outside the sequence \(1 to 33\)"):
        E.score_mutations(tiny, PROT, "K99E")
    with pytest.raises(E.SequenceError, match="'J' \\(mutant letter\\) is not one of the 20 amino acids"):
        E.score_mutations(tiny, PROT, "K2J")
    with pytest.raises(E.ESMError, match="'K2' is not a mutation"):
        E.score_mutations(tiny, PROT, "K2")
    with pytest.raises(E.ESMError, match="No mutations"):
        E.score_mutations(tiny, PROT, " , ")
    csv = E.mutation_scan_csv(PROT, scan).decode().splitlines()
    assert csv[0].startswith("position,wild_type,A,C,D") and csv[1].startswith("1,M,")
