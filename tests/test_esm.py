"""ESM-2 library tests. Every model here is a tiny ESM-2 with random weights written to disk in
fair-esm's checkpoint layout and loaded through the same code a user's file goes through.
A guard makes any network connection attempt fail loudly (and records it)."""
from __future__ import annotations

import argparse
import io
import threading
import time

import numpy as np
import pytest
import torch

from playground import esm as E
from playground.compare import SideBySide, size_sweep, subsample_train
from playground.models import build_model, spec_from_dict
from playground.models.esm_head import ESMHeadSpec
from playground.train import TrainConfig, Trainer

LAYERS, DIM, HEADS = 2, 32, 4
SEQS = ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "ACDEFGHIKL", "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGK",
        "GGSW"]


# --------------------------------------------------------------------------------------------
# fixtures
@pytest.fixture(autouse=True)
def _offline(no_network):
    """Every test here runs with the network refused (``no_network`` in tests/conftest.py)."""
    yield


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A tiny ESM-2 (2 layers × 32, 4 heads, random weights) saved as fair-esm saves them:
    esm2_t2_tiny.pt + esm2_t2_tiny-contact-regression.pt."""
    d = tmp_path_factory.mktemp("ckpt")
    model = E.build_esm2(LAYERS, DIM, HEADS, seed=3).eval()
    path = d / "esm2_t2_tiny.pt"
    E.save_checkpoint(model, path, regression_path=d / "esm2_t2_tiny-contact-regression.pt")
    return path, model


@pytest.fixture(scope="module")
def tiny(tiny_files):
    path, _ = tiny_files
    return E.load_checkpoint_file(path)


# --------------------------------------------------------------------------------------------
# loading through the real path
def test_checkpoint_has_fair_esm_layout(tiny_files):
    path, model = tiny_files
    raw = torch.load(path, map_location="cpu", weights_only=False)   # our own file: inspect it freely
    assert set(raw) == {"model", "cfg"}
    assert isinstance(raw["cfg"]["model"], argparse.Namespace)
    assert raw["cfg"]["model"].encoder_layers == LAYERS and raw["cfg"]["model"].encoder_embed_dim == DIM
    assert all(k.startswith("encoder.sentence_encoder.") for k in raw["model"])
    assert not any("contact_head" in k for k in raw["model"])          # regression lives in its own file
    reg = torch.load(path.with_name("esm2_t2_tiny-contact-regression.pt"), weights_only=True)
    assert set(reg["model"]) == {"contact_head.regression.weight", "contact_head.regression.bias"}


def test_local_file_loads_the_same_weights(tiny, tiny_files, no_network):
    _, model = tiny_files
    assert tiny.source == "file" and tiny.has_contacts and not tiny.untrained
    assert (tiny.layers, tiny.dim, tiny.heads) == (LAYERS, DIM, HEADS)
    ref = model.state_dict()
    got = tiny.model.state_dict()
    assert set(ref) == set(got)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    # shared read-only: eval mode, no gradients, and loading again returns the same object
    assert not tiny.model.training and not any(p.requires_grad for p in tiny.model.parameters())
    assert E.load_checkpoint_file(tiny_files[0]) is tiny
    assert no_network == []


def test_upload_bytes_and_regression_are_optional(tiny_files):
    path, model = tiny_files
    h = E.load_checkpoint_bytes(path.read_bytes(), "my_model.pt")
    assert h.source == "upload" and not h.has_contacts
    assert any("contact" in w for w in h.warnings)
    res = E.attention_and_contacts(h, SEQS[0])
    assert res.contacts is None and "cannot be predicted" in res.contact_note
    assert res.proxy.shape == (len(SEQS[0]), len(SEQS[0]))
    reg = path.with_name("esm2_t2_tiny-contact-regression.pt").read_bytes()
    h2 = E.load_checkpoint_bytes(path.read_bytes(), "my_model.pt", regression=reg)
    assert h2.has_contacts and h2 is not h


def test_pretrained_name_loads_from_the_hub_cache_offline(monkeypatch, tmp_path, no_network):
    """A file already in torch.hub's checkpoint folder is used without any network access, as
    fair-esm's esm2_t6_8M_UR50D() would after its first download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    name = "esm2_t6_8M_UR50D"
    assert not E.is_cached(name)
    with pytest.raises(E.WeightsUnavailable, match="not in the cache"):
        E.load_pretrained(name)                        # allow_download=False: never tries the network
    info = E.CATALOGUE[name]
    model = E.build_esm2(info.layers, info.dim, info.heads, seed=5)
    model_path, reg_path = E.hub_paths(name)
    model_path.parent.mkdir(parents=True)
    E.save_checkpoint(model, model_path, regression_path=reg_path)
    assert E.is_cached(name)
    h = E.load_pretrained(name)
    assert h.source == "pretrained" and h.has_contacts and h.params == info.params
    assert torch.equal(h.model.embed_tokens.weight, model.embed_tokens.weight)
    assert no_network == []
    E.unload(h.key)


def test_download_fails_fast_when_offline(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("PLAYGROUND_OFFLINE", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(E.WeightsUnavailable, match="cannot be reached") as e:
        E.load_pretrained("esm2_t6_8M_UR50D", allow_download=True, timeout=2.0)
    assert time.perf_counter() - t0 < 5
    assert "randomly initialised" in str(e.value)
    assert no_network and all(a[0][0] == E.HUB_HOST for a in no_network)   # only the probe, refused by the guard
    assert not any(tmp_path.rglob("*.pt*"))                                # nothing half-written
    monkeypatch.setenv("PLAYGROUND_OFFLINE", "1")
    n = len(no_network)
    with pytest.raises(E.WeightsUnavailable, match="switched off"):
        E.load_pretrained("esm2_t6_8M_UR50D", allow_download=True)
    assert len(no_network) == n                                            # offline mode: not even a probe


def test_random_model_is_the_same_architecture_and_seeded():
    a = E.random_model("esm2_t6_8M_UR50D", seed=1)
    b = E.random_model("esm2_t6_8M_UR50D", seed=1)
    assert a is b and a.untrained and "untrained weights" in a.label
    assert a.params == E.CATALOGUE["esm2_t6_8M_UR50D"].params
    c = E.build_esm2(6, 320, 20, seed=1)
    assert torch.equal(c.layers[0].fc1.weight, a.model.layers[0].fc1.weight)


def test_catalogue_sizes_match_the_architectures():
    from esm.model.esm2 import ESM2

    for info in E.CATALOGUE.values():
        with torch.device("meta"):
            m = ESM2(info.layers, info.dim, info.heads)
        assert sum(p.numel() for p in m.parameters()) == info.params, info.name


def test_memory_check_refuses_with_the_reason(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MEMORY_LIMIT_MB", "500")
    with pytest.raises(E.MemoryRefused, match=r"needs about [\d,]+ MB .* only [\d,]+ MB"):
        E.random_model("esm2_t33_650M_UR50D", seed=0)
    assert E.get_loaded("untrained:esm2_t33_650M_UR50D:seed0|cpu|float32") is None


# --------------------------------------------------------------------------------------------
# untrusted files
def test_non_esm_files_are_refused_clearly(tmp_path):
    bare = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, bare)
    with pytest.raises(E.CheckpointError, match="not an ESM-2 checkpoint"):
        E.load_checkpoint_bytes(bare.getvalue(), "state_dict.pt")
    with pytest.raises(E.CheckpointError, match="not a PyTorch checkpoint"):
        E.load_checkpoint_bytes(b"id,sequence\n1,MKT\n", "table.pt")
    with pytest.raises(E.CheckpointError, match="empty"):
        E.load_checkpoint_bytes(b"", "empty.pt")
    v1 = io.BytesIO()
    torch.save({"args": argparse.Namespace(arch="roberta_large"), "model": {"x": torch.zeros(1)}}, v1)
    with pytest.raises(E.CheckpointError, match="ESM-1"):
        E.load_checkpoint_bytes(v1.getvalue(), "esm1b.pt")
    wrong = io.BytesIO()
    m = E.build_esm2(2, 32, 4)
    E.save_checkpoint(m, wrong)
    data = torch.load(io.BytesIO(wrong.getvalue()), weights_only=False)
    data["cfg"]["model"].encoder_layers = 3            # declares a layer the weights do not have
    bad = io.BytesIO()
    torch.save(data, bad)
    with pytest.raises(E.CheckpointError, match="does not fit"):
        E.load_checkpoint_bytes(bad.getvalue(), "damaged.pt")
    with pytest.raises(E.CheckpointError, match="does not exist"):
        E.load_checkpoint_file(tmp_path / "nope.pt")


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_with_code_is_never_executed(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = io.BytesIO()
    m = E.build_esm2(2, 32, 4)
    E.save_checkpoint(m, evil)
    data = torch.load(io.BytesIO(evil.getvalue()), weights_only=False)
    data["extra"] = _Payload(str(marker))
    out = io.BytesIO()
    torch.save(data, out)
    assert not marker.exists()
    with pytest.raises(E.CheckpointError, match="Python object of type"):
        E.load_checkpoint_bytes(out.getvalue(), "evil.pt")
    assert not marker.exists()


def test_config_as_plain_dict_is_accepted():
    m = E.build_esm2(2, 32, 4, seed=9)
    buf = io.BytesIO()
    E.save_checkpoint(m, buf)
    data = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    data["cfg"]["model"] = vars(data["cfg"]["model"])
    out = io.BytesIO()
    torch.save(data, out)
    h = E.load_checkpoint_bytes(out.getvalue(), "dict_cfg.pt")
    assert torch.equal(h.model.layers[1].fc2.weight, m.layers[1].fc2.weight)


# --------------------------------------------------------------------------------------------
# the forward pass
def test_forward_matches_fair_esm_on_a_padded_batch_with_masks(tiny):
    tokens = E.encode(tiny.alphabet, SEQS)
    tokens[0, 5] = tiny.alphabet.mask_idx
    with torch.no_grad():
        ref = tiny.model(tokens, repr_layers=[0, 1, 2], return_contacts=True)
        got = E.esm_forward(tiny.model, tokens, [0, 1, 2], need_logits=True, need_attentions=True)
    for layer in (0, 1, 2):
        torch.testing.assert_close(got["representations"][layer], ref["representations"][layer], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got["logits"], ref["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got["attentions"], ref["attentions"], atol=1e-6, rtol=1e-4)
    contacts = tiny.model.contact_head(tokens, got["attentions"])
    torch.testing.assert_close(contacts, ref["contacts"], atol=1e-6, rtol=1e-4)


def test_encode_matches_fair_esm_batch_converter(tiny):
    _, _, ref = tiny.alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(SEQS)])
    assert torch.equal(E.encode(tiny.alphabet, SEQS), ref)


def test_length_batches_respect_the_token_budget():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(5, 300, 200))
    batches = E.length_batches(lengths, 2000)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 2) <= 2000


# --------------------------------------------------------------------------------------------
# masked language model
def test_masked_lm_probabilities_sum_to_one_and_top_k(tiny):
    pred = E.mask_predictions(tiny, SEQS[2], "3, 10-11", top_k=4)
    assert pred.masked == [3, 10, 11]
    assert pred.probs.shape == (len(SEQS[2]), 21)
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, atol=1e-9)
    assert (pred.probs >= 0).all()
    for p, top in pred.top.items():
        assert len(top) == 4
        vals = [v for _, v in top]
        assert vals == sorted(vals, reverse=True)
        assert top[0][1] == pytest.approx(pred.probs[p - 1, :20].max())
    # the same numbers as fair-esm's own forward with <mask> at those positions
    tokens = E.encode(tiny.alphabet, [SEQS[2]])
    for p in (3, 10, 11):
        tokens[0, p] = tiny.alphabet.mask_idx
    with torch.no_grad():
        full = torch.softmax(tiny.model(tokens)["logits"][0, 1:-1].double(), -1)
    np.testing.assert_allclose(full.sum(-1).numpy(), 1.0, atol=1e-9)
    aa = [tiny.alphabet.get_idx(a) for a in E.AMINO_ACIDS]
    np.testing.assert_allclose(pred.probs[:, :20], full[:, aa].numpy(), atol=1e-5)


def test_pseudo_perplexity_is_the_mean_of_single_masks(tiny):
    seq = SEQS[1]
    ppl = E.pseudo_perplexity(tiny, seq, token_budget=30)     # several batches
    manual = []
    for i in range(1, len(seq) + 1):
        p = E.mask_predictions(tiny, seq, [i])
        manual.append(np.log(p.probs[i - 1, E.AMINO_ACIDS.index(seq[i - 1])]))
    np.testing.assert_allclose(ppl.log_probs, manual, rtol=1e-5)
    assert ppl.ppl == pytest.approx(float(np.exp(-np.mean(manual))), rel=1e-6)
    np.testing.assert_allclose(ppl.probs.sum(1), 1.0, atol=1e-9)


def test_bad_letters_name_the_sequence_and_position(tiny):
    with pytest.raises(E.SequenceError, match=r"position 4: 'J' is not an amino-acid letter"):
        E.mask_predictions(tiny, "MKTJAY")
    with pytest.raises(E.SequenceError, match=r"Sequence 'b' \(number 2\), position 3: '1'"):
        E.embed(tiny, ["MKT", "AC1D"], ids=["a", "b"])
    with pytest.raises(E.SequenceError, match="empty"):
        E.mask_predictions(tiny, "  \n")
    with pytest.raises(E.ESMError, match="outside the sequence"):
        E.mask_predictions(tiny, "MKT", "5")
    assert E.clean_sequence("mk t\nay*") == "MKTAY"                  # case, whitespace, stop are fine


# --------------------------------------------------------------------------------------------
# embeddings
def test_mean_pooling_excludes_bos_eos_and_padding(tiny):
    """Batched (padded, length-sorted) embeddings equal a manual mean over positions 1..L of each
    protein run alone through fair-esm's model; including BOS/EOS would change the numbers."""
    res = E.embed(tiny, SEQS, layer=1, use_cache=False, token_budget=120, precision="float32")
    assert res.vectors.shape == (len(SEQS), DIM) and res.precision == "float32"
    for i, s in enumerate(SEQS):
        tokens = E.encode(tiny.alphabet, [s])
        with torch.no_grad():
            rep = tiny.model(tokens, repr_layers=[1])["representations"][1][0]
        manual = rep[1: len(s) + 1].mean(0).numpy()
        np.testing.assert_allclose(res.vectors[i], manual, atol=1e-5)
        with_specials = rep.mean(0).numpy()
        assert np.abs(with_specials - manual).max() > 1e-3
    np.testing.assert_allclose(E.embed_naive(tiny, SEQS, layer=1), res.vectors, atol=1e-5)


def test_mixed_precision_embeddings_match_float32(tiny, monkeypatch):
    """The CPU fast path (bf16 matrix products, float32 everything else) gives the float32
    embeddings to within 1e-4 in cosine, on padded batches too; 'auto' picks it only on a CPU with
    native bf16 and a float32 model, and the environment variable turns it off."""
    exact = E.embed(tiny, SEQS, layer=-1, use_cache=False, token_budget=120, precision="float32").vectors
    res = E.embed(tiny, SEQS, layer=-1, use_cache=False, token_budget=120, precision="mixed")
    assert res.precision == "mixed"
    cos = (exact * res.vectors).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(res.vectors, axis=1)
    assert cos.min() > 0.9999
    assert np.abs(exact - res.vectors).max() > 0            # it really ran in lower precision
    one_by_one = np.concatenate([E.embed(tiny, [s], layer=-1, use_cache=False, precision="mixed").vectors
                                 for s in SEQS])
    np.testing.assert_allclose(one_by_one, res.vectors, atol=2e-2)   # padding and masks do not leak in
    monkeypatch.setattr(E, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv("PLAYGROUND_ESM_PRECISION", raising=False)
    assert E.resolve_precision(tiny) == "mixed"
    monkeypatch.setenv("PLAYGROUND_ESM_PRECISION", "float32")
    assert E.resolve_precision(tiny) == "float32"
    monkeypatch.setattr(E, "cpu_has_native_bf16", lambda: False)
    monkeypatch.delenv("PLAYGROUND_ESM_PRECISION")
    assert E.resolve_precision(tiny) == "float32"
    with pytest.raises(E.ESMError, match="precision must be"):
        E.resolve_precision(tiny, "fp8")
    # the cache keeps the two apart
    E.clear_embedding_cache(tiny.key)
    E.embed(tiny, SEQS[:1], precision="mixed")
    assert E.embed(tiny, SEQS[:1], precision="float32").from_cache == 0
    assert E.embed(tiny, SEQS[:1], precision="mixed").from_cache == 1


def test_per_residue_embeddings_and_layers(tiny):
    res = E.embed(tiny, SEQS, layer=-1, pooling="per_residue", use_cache=False)
    assert res.layer == LAYERS
    assert [a.shape for a in res.per_residue] == [(len(s), DIM) for s in SEQS]
    pad = res.padded()
    assert pad.shape == (len(SEQS), max(map(len, SEQS)), DIM) and not pad[3, 4:].any()
    mean = E.embed(tiny, SEQS, layer=-1, use_cache=False)
    np.testing.assert_allclose(mean.vectors, np.stack([a.mean(0) for a in res.per_residue]), atol=1e-5)
    with pytest.raises(E.ESMError, match="layer 7 does not exist"):
        E.embed(tiny, SEQS, layer=7)


def test_embedding_cache_by_model_layer_and_sequence(tiny):
    E.clear_embedding_cache(tiny.key)
    first = E.embed(tiny, SEQS[:2], layer=2)
    assert first.from_cache == 0
    again = E.embed(tiny, [SEQS[1], SEQS[0], SEQS[2]], layer=2)
    assert again.from_cache == 2
    np.testing.assert_array_equal(again.vectors[0], first.vectors[1])
    other_layer = E.embed(tiny, SEQS[:1], layer=1)
    assert other_layer.from_cache == 0


def test_long_sequences_truncated_or_windowed_with_a_warning(tiny):
    rng = np.random.default_rng(1)
    long = "".join(rng.choice(list(E.AMINO_ACIDS), 1500))
    cut = E.embed(tiny, [long, "MKT"], ids=["big", "small"], pooling="per_residue", use_cache=False)
    assert len(cut.per_residue[0]) == E.MAX_RESIDUES
    assert len(cut.warnings) == 1 and "'big' has 1500 residues" in cut.warnings[0] and "first 1022" in cut.warnings[0]
    win = E.embed(tiny, [long], ids=["big"], pooling="per_residue", long_policy="window", use_cache=False)
    assert len(win.per_residue[0]) == 1500 and "windows" in win.warnings[0]
    # residues only in the first window get exactly the first window's embedding
    np.testing.assert_allclose(win.per_residue[0][:100], cut.per_residue[0][:100], atol=1e-5)
    pred = E.mask_predictions(tiny, long, "1")
    assert len(pred.seq) == E.MAX_RESIDUES and "first 1022" in pred.warnings[0]


@pytest.mark.parametrize("precision,atol", [("float32", 1e-5), ("mixed", 2e-2)])
def test_shared_model_used_from_two_threads(tiny, precision, atol):
    """Four threads embedding at once (different batchings) get what one thread gets. In bf16 the
    batch shape changes the rounding a little, hence the looser tolerance there."""
    seqs = ["".join(np.random.default_rng(k).choice(list(E.AMINO_ACIDS), 20 + 7 * k)) for k in range(12)]
    expect = E.embed(tiny, seqs, use_cache=False, precision=precision).vectors
    out = {}

    def work(k):
        out[k] = E.embed(tiny, seqs[::-1] if k % 2 else seqs, use_cache=False, token_budget=60,
                         precision=precision).vectors

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4
    for k, v in out.items():
        np.testing.assert_allclose(v[::-1] if k % 2 else v, expect, atol=atol)


def test_exports_and_projection(tiny):
    res = E.embed(tiny, SEQS, ids=["a", "b", "c", "d"])
    csv = E.embeddings_csv(res, labels=[0, 1, 0, 1]).decode().splitlines()
    assert csv[0].startswith("id,label,length,e0,e1") and csv[1].startswith("a,0,")
    raw, name = E.embeddings_npy(res)
    assert name.endswith(".npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(raw)), res.vectors)
    xy, caption = E.project_2d(res.vectors, "pca")
    assert xy.shape == (4, 2) and "PCA" in caption
    xy, caption = E.project_2d(res.vectors, "tsne")
    assert xy.shape == (4, 2)
    per = E.embed(tiny, SEQS[:2], pooling="per_residue")
    raw, name = E.embeddings_npy(per)
    z = np.load(io.BytesIO(raw))
    assert name.endswith(".npz") and list(z["ids"]) == per.ids and z["seq00001"].shape == (len(SEQS[1]), DIM)


# --------------------------------------------------------------------------------------------
# attention and contacts
def test_attention_and_contacts_match_fair_esm(tiny):
    res = E.attention_and_contacts(tiny, SEQS[2])
    tokens = E.encode(tiny.alphabet, [SEQS[2]])
    with torch.no_grad():
        ref = tiny.model(tokens, return_contacts=True)
    L = len(SEQS[2])
    assert res.attentions.shape == (LAYERS, HEADS, L + 2, L + 2)
    np.testing.assert_allclose(res.attentions.astype(np.float32), ref["attentions"][0].numpy(), atol=2e-3)
    np.testing.assert_allclose(res.contacts, ref["contacts"][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(res.head(1).sum(-1), 1.0, atol=1e-2)        # each row is a distribution
    assert res.tokens[0] == "<cls>" and res.tokens[-1] == "<eos>"


# --------------------------------------------------------------------------------------------
# the head
def _solubility_split(n=120, seed=0):
    from playground.data import protein

    ps = protein.solubility_set(n, 30, 60, seed=seed)
    return ps, protein.to_split(ps, "random", 0.75, seed)


def test_head_trains_on_embeddings_and_its_loss_goes_down(tiny):
    ps, base = _solubility_split()
    data = E.head_split(tiny, ps.seqs, base, layer=-1)
    assert data.x_train.shape == (len(base.y_train), DIM)
    assert torch.equal(data.y_train, base.y_train) and torch.equal(data.y_test, base.y_test)
    # the same proteins in the same part: validation too (what the Trainer evaluates every epoch)
    assert len(base.y_val) > 0 and torch.equal(data.y_val, base.y_val) and data.x_val.shape == (len(base.y_val), DIM)
    every = E.embed(tiny, ps.seqs, layer=-1).vectors                 # one row per protein, in the set's order
    np.testing.assert_array_equal(data.x_val.numpy(), every[base.meta["val_idx"]])
    np.testing.assert_array_equal(data.x_test.numpy(), every[base.meta["test_idx"]])
    spec = E.make_head_spec(tiny, data, "mlp", hidden=16)
    assert spec.esm_model == tiny.key and spec.esm_name == tiny.name and spec.layer == LAYERS
    assert spec_from_dict(spec.to_dict()) == spec
    tr = Trainer(build_model(spec, 0), data, TrainConfig(lr=0.01, batch_size=16, seed=0, track_metrics=True))
    tr.run_epochs(25)
    assert tr.history[-1]["train_loss"] < 0.8 * tr.history[0]["train_loss"]
    logistic = Trainer(build_model(E.make_head_spec(tiny, data), 0), data, TrainConfig(lr=0.01, batch_size=16))
    logistic.run_epochs(25)
    assert logistic.history[-1]["train_loss"] < logistic.history[0]["train_loss"]


def test_fine_tuning_trains_a_copy_and_never_the_shared_model(tiny):
    ps, base = _solubility_split(60)
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    data = E.head_split(tiny, ps.seqs, base, finetune_layers=1)
    assert data.x_train.shape[-1] == DIM + 1
    spec = E.make_head_spec(tiny, data, "logistic", finetune_layers=1)
    model = build_model(spec, 0)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > DIM * 12 * DIM   # one whole layer
    tr = Trainer(model, data, TrainConfig(lr=0.003, batch_size=8, seed=0))
    tr.run_epochs(4)
    assert tr.history[-1]["train_loss"] < tr.history[0]["train_loss"]
    for k, v in tiny.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not any(p.requires_grad for p in tiny.model.parameters())
    # before training, the copied layer reproduces the frozen model's pooled last layer
    fresh = build_model(spec, 0)
    with torch.no_grad():
        x = data.x_train[:3]
        h, kind = x[..., :-1], x[..., -1]
        out = h
        cos, sin = E.rotary_tables(fresh, h.shape[1], h.device, h.dtype)
        pad = kind == 0
        out, _ = E.layer_forward(fresh.layers[0], out, pad if pad.any() else None, cos, sin)
        out = fresh.final_norm(out)
        keep = (kind == 2).unsqueeze(-1).float()
        pooled = (out * keep).sum(1) / keep.sum(1)
    idx = base.meta["train_idx"][:3]
    ref = E.embed(tiny, [ps.seqs[i] for i in idx], layer=-1, use_cache=False, precision="float32").vectors
    np.testing.assert_allclose(pooled.numpy(), ref, atol=1e-4)


def test_fine_tuning_needs_the_model_loaded():
    spec = ESMHeadSpec(esm_model="file:/nowhere|cpu|float32", esm_name="esm2_x", finetune_layers=1)
    with pytest.raises(ValueError, match="load it on the Protein language model page"):
        build_model(spec, 0)


def test_per_residue_head_and_side_by_side(tiny):
    from playground.data import protein

    ss = protein.secondary_structure_set(40, 20, 40, seed=1)
    base = protein.to_split(ss, "random", 0.75, 0)
    data = E.head_split(tiny, ss.seqs, base)
    assert data.x_train.shape[:2] == base.y_train.shape
    head = Trainer(build_model(E.make_head_spec(tiny, data), 0), data, TrainConfig(lr=0.01, batch_size=8, seed=0,
                                                                                   track_metrics=True))
    cnn = Trainer(build_model(E.scratch_cnn_spec(base), 0), base, TrainConfig(lr=0.01, batch_size=8, seed=0,
                                                                             track_metrics=True))
    pair = SideBySide({"ESM-2 head": head, "CNN": cnn})
    pair.run_for(1.0)
    assert abs(head.epoch - cnn.epoch) <= 1 and pair.steps == head.steps + cnn.steps
    pair.run_epochs(1)
    rows = pair.table()
    assert [r["model"] for r in rows] == ["ESM-2 head", "CNN"]
    assert rows[0]["validation q3"] == pytest.approx(head.history[-1]["val_q3"], abs=1e-4)
    assert rows[1]["validation loss"] == pytest.approx(cnn.history[-1]["val_loss"], abs=1e-4)
    assert not any(k.startswith("test") for k in rows[0])          # the table never reads the test set


def test_subsample_and_size_sweep(tiny):
    ps, base = _solubility_split(80)
    data = E.head_split(tiny, ps.seqs, base)
    small_a, small_b = subsample_train(data, 10, 3), subsample_train(base, 10, 3)
    assert len(small_a.y_train) == 10 and torch.equal(small_a.y_train, small_b.y_train)
    assert torch.equal(small_a.x_test, data.x_test) and torch.equal(small_a.x_val, data.x_val)
    rows = size_sweep({"head": data, "cnn": base}, {"head": E.make_head_spec(tiny, data),
                                                  "cnn": E.scratch_cnn_spec(base)},
                      [10, 40], 2, TrainConfig(lr=0.01, batch_size=8))
    assert [(r["training examples"], r["model"]) for r in rows] == [(10, "head"), (10, "cnn"), (40, "head"),
                                                                     (40, "cnn")]
    assert all(0.0 <= r["value"] <= 1.0 for r in rows)
    # a sweep reads validation, never the held-out test set
    assert all(np.isfinite(r["validation loss"]) and "test loss" not in r for r in rows)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_bf16_on_cuda_close_to_float32(tiny_files):
    path, _ = tiny_files
    cpu = E.load_checkpoint_file(path)
    gpu = E.load_checkpoint_file(path, device="cuda", bf16=True)
    assert gpu.dtype == torch.bfloat16 and gpu.model.embed_tokens.weight.is_cuda
    a = E.embed(cpu, SEQS, use_cache=False).vectors
    b = E.embed(gpu, SEQS, use_cache=False).vectors
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    np.testing.assert_allclose(E.mask_predictions(gpu, SEQS[0], "3").probs.sum(1), 1.0, atol=1e-6)
