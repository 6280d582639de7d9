"""Uploads cannot exhaust the server's memory: hostile model bundles and ESM-2 checkpoints are
refused with the loader's friendly error before anything big is allocated (playground.limits).

The memory tests run the loads in a fresh Python process and compare its peak RSS
(``ru_maxrss``) after the hostile loads with the peak after reading normal bundles."""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from playground import esm as E
from playground import limits
from playground.bundle import (FORMAT, BundleError, InputSpec, bundle_from_model, load_bundle,
                               thin_history)
from playground.models import SPECS, build_model, spec_from_dict
from playground.models.cnn import CNNSpec
from playground.models.mlp import MLPSpec
from playground.models.transformer import TransformerSpec

ROOT = Path(__file__).resolve().parents[1]
MEMORY_BUDGET_MB = 100

ONE_HOT = {"kind": "one_hot", "alphabet": "dna", "length": 30}
TOKENS = {"kind": "tokens", "alphabet": "dna"}
PROTEIN_TOKENS = {"kind": "tokens", "alphabet": "protein"}
FEATURES = {"kind": "features", "alphabet": None, "features": ["x1", "x2"]}
ESM_IN = {"kind": "esm_embedding", "alphabet": "protein", "esm_model": "esm2_t6_8M_UR50D"}
LM_TOKENS = {"kind": "lm_tokens", "alphabet": "dna", "max_length": 40,
             "tokenizer": {"alphabet": "dna", "kind": "char", "k": 1}}   # a language model's own tokens
BIG_LM = {"vocab_size": 10_004, "d_model": 4096, "heads": 64, "layers": 16, "ff": 16_384}


# ---------------------------------------------------------------------------------------------
# bundles: a real small one, and hostile ones made from it
def _cnn_bundle():
    spec = CNNSpec(length=30, channels=(8,), kernel_sizes=(6,), pool="max", pool_size=2, dense=(8,), n_outputs=1)
    return bundle_from_model(build_model(spec, 0), spec, InputSpec("one_hot", "dna", length=30), "binary",
                             ["neg", "pos"], page="dna", dataset="planted CTCF")


def _normal_bundles() -> dict[str, bytes]:
    """Small bundles of the three input kinds (one-hot, tokens, features), as the pages save them."""
    tr = TransformerSpec(vocab_size=6, d_model=16, heads=2, layers=1, ff=32, n_outputs=1)
    mlp = MLPSpec(2, (4,), "tanh", 1)
    return {"cnn": _cnn_bundle().to_bytes(),
            "transformer": bundle_from_model(build_model(tr, 0), tr, InputSpec("tokens", "dna"), "binary",
                                             ["a", "b"]).to_bytes(),
            "mlp": bundle_from_model(build_model(mlp, 0), mlp, InputSpec("features", None, features=["x1", "x2"]),
                                     "binary", ["a", "b"]).to_bytes()}


def _save(obj: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _expanded_weights(spec) -> dict:
    """Weights of exactly the right names and shapes that take a few bytes in the file: one
    number each, expanded (stride 0). A hostile file can pass every shape check this way."""
    meta = limits.meta_model(spec)
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in meta.state_dict().items()}


# name -> (spec dict, input dict, weights: "tiny" (the small CNN's) or "expanded" (matching, stride 0))
HOSTILE = {
    # per-field caps: refused before the spec is even constructed
    "cnn_dense": ({"kind": "cnn", "length": 30, "channels": [8], "kernel_sizes": [6], "dense": [1_000_000]},
                  ONE_HOT, "tiny"),
    "cnn_length": ({"kind": "cnn", "length": 100_000_000, "channels": [8], "kernel_sizes": [6]},
                   {**ONE_HOT, "length": 10_000}, "tiny"),
    "cnn_length_1e12": ({"kind": "cnn", "length": 10 ** 12, "channels": [8], "kernel_sizes": [6]}, ONE_HOT, "tiny"),
    "cnn_channels": ({"kind": "cnn", "length": 30, "channels": [10 ** 6], "kernel_sizes": [6]}, ONE_HOT, "tiny"),
    "logreg_length": ({"kind": "logreg", "length": 10 ** 9}, ONE_HOT, "tiny"),
    "mlp_inputs": ({"kind": "mlp", "n_inputs": 10 ** 10, "hidden": [4]}, FEATURES, "tiny"),
    "mlp_many_layers": ({"kind": "mlp", "n_inputs": 2, "hidden": [4] * 10_000}, FEATURES, "tiny"),
    "transformer_vocab": ({"kind": "transformer", "vocab_size": 10 ** 8}, TOKENS, "tiny"),
    "transformer_layers": ({"kind": "transformer", "layers": 10 ** 7}, TOKENS, "tiny"),
    "token_cnn_embed": ({"kind": "token_cnn", "embed_dim": 10 ** 7}, PROTEIN_TOKENS, "tiny"),
    "esm_head_embed": ({"kind": "esm_head", "embed_dim": 10 ** 9}, ESM_IN, "tiny"),
    "input_length": ({"kind": "cnn", "length": 30, "channels": [8], "kernel_sizes": [6]},
                     {**ONE_HOT, "length": 10 ** 9}, "tiny"),
    "lm_vocab": ({"kind": "lm", "vocab_size": 10 ** 8}, LM_TOKENS, "tiny"),
    "lm_tokenizer_k": ({"kind": "lm"}, {**LM_TOKENS, "tokenizer": {"alphabet": "dna", "kind": "kmer_overlap",
                                                                   "k": 10 ** 9}}, "tiny"),
    # within every per-field cap, but too many parameters: counted on the meta device
    "cnn_parameters": ({"kind": "cnn", "length": 10_000, "channels": [256, 256, 256, 256], "kernel_sizes": [25],
                        "padding": "same", "pool": "none", "dense": [4096]}, {**ONE_HOT, "length": 10_000}, "tiny"),
    "rnn_parameters": ({"kind": "rnn", "cell": "lstm", "vocab_size": 6, "embed_dim": 5120, "hidden": 4096,
                        "layers": 16}, TOKENS, "tiny"),
    "transformer_parameters": ({"kind": "transformer", "vocab_size": 6, "d_model": 4096, "heads": 64, "layers": 16,
                                "ff": 16_384}, TOKENS, "tiny"),
    "transformer_learned_positions": ({"kind": "transformer", "d_model": 4096, "heads": 64, "layers": 2, "ff": 16_384,
                                       "positional": "learned", "max_len": 10_000}, TOKENS, "tiny"),
    "hybrid_parameters": ({"kind": "hybrid", "conv1_channels": 1024, "conv1_kernel": 64, "conv2_channels": 1024,
                           "conv2_kernel": 64, "heads": 64, "ff": 16_384, "layers": 16}, TOKENS, "tiny"),
    "token_cnn_parameters": ({"kind": "token_cnn", "vocab_size": 22, "embed_dim": 1024, "channels": [1024] * 16,
                              "kernel": 64}, PROTEIN_TOKENS, "tiny"),
    "esm_head_finetune_parameters": ({"kind": "esm_head", "esm_name": "esm2_custom", "esm_model": "file:x",
                                      "embed_dim": 5120, "finetune_layers": 48},
                                     {**ESM_IN, "kind": "esm_finetune"}, "tiny"),
    "esm_head_finetune_layers": ({"kind": "esm_head", "finetune_layers": 48}, {**ESM_IN, "kind": "esm_finetune"},
                                 "tiny"),
    # (an LM's attention runs as PyTorch's fused kernel, whose memory grows with the length, not its square
    # (measured: 3,000 positions x 4 heads, +2 MB; explicit softmax(QKᵀ)V +277 MB): no activation case)
    "lm_parameters": ({"kind": "lm", **BIG_LM}, LM_TOKENS, "tiny"),
    "lm_classifier_parameters": ({"kind": "lm_classifier", **BIG_LM}, LM_TOKENS, "tiny"),
    # right shapes and a sensible parameter count, but the activations of ONE input are huge:
    # measured by a meta forward pass
    "rnn_activations": ({"kind": "rnn", "cell": "lstm", "vocab_size": 6, "embed_dim": 64, "hidden": 1024,
                         "layers": 1, "bidirectional": True}, TOKENS, "expanded"),
    "transformer_attention_activations": ({"kind": "transformer", "vocab_size": 6, "d_model": 64, "heads": 64,
                                           "layers": 1, "ff": 64, "attention_dropout": 0.5}, TOKENS, "expanded"),
    "hybrid_activations": ({"kind": "hybrid", "conv1_channels": 1024, "conv1_kernel": 1, "conv2_channels": 1024,
                            "conv2_kernel": 1, "pool_positions": 10_000, "heads": 8, "ff": 4096, "layers": 1,
                            "hidden": 1}, TOKENS, "expanded"),
}


def _hostile_bytes(name: str) -> bytes:
    spec_d, inp, weights = HOSTILE[name]
    obj = _cnn_bundle().to_dict()
    obj["spec"] = dict(spec_d)
    obj["input"] = {**InputSpec().to_dict(), **inp}
    if weights == "expanded":
        obj["state_dict"] = _expanded_weights(spec_from_dict(spec_d))
    return _save(obj)


def test_every_family_is_covered_by_a_hostile_bundle():
    covered = {spec_d["kind"] for spec_d, _, _ in HOSTILE.values()}
    assert set(SPECS) <= covered, f"no hostile bundle for {set(SPECS) - covered}"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bundle_is_refused_with_the_cap(name):
    data = _hostile_bytes(name)
    assert len(data) < 100_000, "a hostile bundle is a small file"
    t0 = time.perf_counter()
    with pytest.raises(BundleError) as e:
        load_bundle(data, filename=f"{name}.pt")
    assert time.perf_counter() - t0 < 10
    msg = e.value.message
    assert f"'{name}.pt'" in msg
    # the message says what the limit is
    assert any(w in msg for w in ("allows", "up to", "has 6", "only")), msg
    if name.endswith("_parameters"):
        assert f"{limits.MAX_PARAMETERS:,}" in msg
    if name.endswith("_activations"):
        assert "activations" in msg and "256 MB" in msg


def _run_python(script: str, *args: str, timeout: float = 120) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_OFFLINE": "1", "PLAYGROUND_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout,
                         env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# Peak memory of one load: the kernel's high-water mark (VmHWM) is reset before each load
# (/proc/self/clear_refs, Linux >= 4.0) and compared with the resident memory before it; where it
# cannot be reset, the process's lifetime peak (ru_maxrss) is compared with the peak after the
# normal loads.
MEMORY_HELPERS = r"""
import json, resource, sys
from pathlib import Path

def _status_mb(key):
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith(key)).split()[1]) / 1024

def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_mb("VmHWM") <= _status_mb("VmRSS") + 1
    except OSError:
        return False

def measure(load, baseline):
    exact = _reset_peak()
    before = _status_mb("VmRSS") if exact else baseline
    try:
        load()
        result = "loaded"
    except BaseException as e:
        result = type(e).__name__ if type(e).__name__ in ("BundleError", "CheckpointError") else f"{type(e).__name__}: {e}"[:300]
    peak = _status_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"result": result, "grew_mb": peak - before, "exact": exact}
"""

BUNDLE_MEMORY_SCRIPT = MEMORY_HELPERS + r"""
from playground.bundle import load_bundle

normal, hostile = [], []
for p in sys.argv[1:]:
    (normal if Path(p).name.startswith("normal_") else hostile).append(Path(p))
for _ in range(2):                       # imports, the first meta forward of each input kind
    for p in normal:
        load_bundle(p.read_bytes())
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cases = {}
for p in hostile:
    data = p.read_bytes()
    cases[p.stem] = measure(lambda: load_bundle(data), baseline)
print(json.dumps(cases))
"""


def test_hostile_bundles_use_little_memory(tmp_path):
    """Every hostile bundle, loaded in a fresh process after normal bundles were read there: all
    refused, and the process's peak memory grows less than 100 MB over the normal reads."""
    paths = []
    for name, data in _normal_bundles().items():
        paths.append(tmp_path / f"normal_{name}.pt")
        paths[-1].write_bytes(data)
    for name in HOSTILE:
        paths.append(tmp_path / f"{name}.pt")
        paths[-1].write_bytes(_hostile_bytes(name))
    paths.append(tmp_path / "deflate_bomb.pt")
    paths[-1].write_bytes(_deflate_bomb(150_000_000))
    cases = _run_python(BUNDLE_MEMORY_SCRIPT, *map(str, paths))
    assert len(cases) == len(HOSTILE) + 1
    for name, case in cases.items():
        assert case["result"] == "BundleError", (name, case)
        assert case["grew_mb"] < MEMORY_BUDGET_MB, (name, case)


# ---------------------------------------------------------------------------------------------
# damaged files: always a BundleError
def _parts(raw: bytes) -> list[tuple[str, bytes]]:
    z = zipfile.ZipFile(io.BytesIO(raw))
    return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def _repack(parts, compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, b in parts:
            z.writestr(name, b)
    return out.getvalue()


def _mutate(rng: random.Random, b: bytes) -> bytes:
    d = bytearray(b)
    op = rng.choice(("flip", "truncate", "insert", "zero"))
    if op == "flip":
        for _ in range(rng.randint(1, 6)):
            p = rng.randrange(len(d))
            d[p] ^= 1 << rng.randrange(8)
    elif op == "truncate":
        d = d[:rng.randrange(len(d))]
    elif op == "insert":
        p = rng.randrange(len(d) + 1)
        d[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    else:
        p = rng.randrange(len(d))
        n = rng.randint(1, 64)
        d[p:p + n] = bytes(len(d[p:p + n]))
    return bytes(d)


def _load_outcome(data: bytes) -> str:
    try:
        b = load_bundle(data)
    except BundleError as e:
        assert e.message and e.hint, "a refusal says what is wrong and what to do"
        return "refused"
    b.build_model()              # what the loader accepts can be used
    return "loaded"


def test_fuzzed_bundles_only_ever_raise_bundle_error():
    """300 seeded mutations (flip, truncate, insert, zero a range) of a real bundle: 150 of the
    raw file (the zip layer), 150 of its data.pkl re-packed with correct checksums (so they reach
    the unpickler and the field checks). Nothing but a BundleError ever leaves load_bundle."""
    raw = _cnn_bundle().to_bytes()
    parts = _parts(raw)
    rng = random.Random(20240611)
    t0 = time.perf_counter()
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(150):
        outcomes[_load_outcome(_mutate(rng, raw))] += 1
    deep = {"refused": 0, "loaded": 0}
    for _ in range(150):
        mutated = [(n, _mutate(rng, b) if n.endswith("data.pkl") else b) for n, b in parts]
        deep[_load_outcome(_repack(mutated))] += 1
    assert outcomes["refused"] > 120 and deep["refused"] > 100
    assert time.perf_counter() - t0 < 60


def test_non_utf8_bytes_in_the_records_and_the_names():
    raw = _cnn_bundle().to_bytes()
    parts = _parts(raw)
    # a byte that is not UTF-8 inside a text record of the pickle (the dataset name)
    pkl = [b for n, b in parts if n.endswith("data.pkl")][0]
    assert b"planted CTCF" in pkl
    bad = [(n, b.replace(b"planted CTCF", b"planted\xff\xfeTCF") if n.endswith("data.pkl") else b) for n, b in parts]
    with pytest.raises(BundleError, match="damaged") as e:
        load_bundle(_repack(bad))
    assert "again" in e.value.hint
    # ... and in the format string the loader checks first
    bad = [(n, b.replace(FORMAT.encode(), FORMAT.encode()[:-2] + b"\xc3\x28") if n.endswith("data.pkl") else b)
           for n, b in parts]
    with pytest.raises(BundleError, match="damaged"):
        load_bundle(_repack(bad))
    # a part name that is not UTF-8 although the archive's UTF-8 flag says it is (zipfile raises
    # UnicodeDecodeError reading the directory)
    first = zipfile.ZipFile(io.BytesIO(raw)).infolist()[0]
    cd = raw.index(b"PK\x01\x02")                  # the first central-directory entry
    name_at = cd + 46
    assert raw[name_at:name_at + len(first.filename)] == first.filename.encode()
    broken = bytearray(raw)
    broken[cd + 8:cd + 10] = (int.from_bytes(raw[cd + 8:cd + 10], "little") | 0x800).to_bytes(2, "little")
    broken[name_at + 2] = 0xE5
    with pytest.raises(BundleError, match="incomplete or damaged"):
        load_bundle(bytes(broken))


def _deflate_bomb(size: int) -> bytes:
    """A valid bundle that also holds ``size`` bytes of zeros (a uint8 tensor), re-packed with
    deflate: well under 1 MB on disk, ``size`` bytes once torch.load unpacks it."""
    obj = _cnn_bundle().to_dict()
    obj["state_dict"]["padding"] = torch.zeros(size, dtype=torch.uint8)
    return _repack(_parts(_save(obj)), zipfile.ZIP_DEFLATED)


def test_archive_tricks_are_refused():
    raw = _cnn_bundle().to_bytes()
    # compressed parts could unpack to anything: refused, whatever they hold
    bomb = _deflate_bomb(50_000_000)
    assert len(bomb) < 1_000_000
    with pytest.raises(BundleError, match="compressed zip archive") as e:
        load_bundle(bomb)
    assert "not zipped again" in e.value.hint
    # a part whose declared size is huge (the central directory edited)
    cd = raw.index(b"PK\x01\x02")
    huge = bytearray(raw)
    huge[cd + 24:cd + 28] = (0xFFFFFFF0).to_bytes(4, "little")        # uncompressed size
    with pytest.raises(BundleError, match="declares|damaged"):
        load_bundle(bytes(huge))
    # a zip holding the bundle (zipped again), an empty zip, a zip of 20,000 parts
    with pytest.raises(BundleError, match="zip archive but not a PyTorch file"):
        load_bundle(_repack([("model.pt", raw)]))
    with pytest.raises(BundleError, match="zip archive but not a PyTorch file"):
        load_bundle(_repack([("model.pt", raw)], zipfile.ZIP_DEFLATED))
    with pytest.raises(BundleError, match="not a PyTorch file"):
        load_bundle(_repack([]))
    with pytest.raises(BundleError, match="20,000 parts|more than 10,000 parts"):
        load_bundle(_repack([*_parts(raw), *[(f"archive/x{i}", b"") for i in range(20_000)]]))
    # wrong magic numbers
    for head in (b"PK\x03\x05", b"PK\x05\x06", b"\x89PNG", b"\x1f\x8b\x08\x00"):
        with pytest.raises(BundleError):
            load_bundle(head + raw[4:])
    for n in range(0, 12):
        with pytest.raises(BundleError):
            load_bundle(raw[:n])


def test_pickle_tricks_are_refused_quickly():
    base = _cnn_bundle().to_dict()
    # one list repeated inside itself 1000 times on each of 6 levels: 10^18 values to walk
    nest = [0.0]
    for _ in range(6):
        nest = [nest] * 1000
    t0 = time.perf_counter()
    with pytest.raises(BundleError, match="more than 1,000,000 values"):
        load_bundle(_save({**base, "history": nest}))
    assert time.perf_counter() - t0 < 5
    # whole numbers beyond 64 bits where plain data belongs (torch's unpickler refuses the longest
    # ones as damage; a 600-digit one it reads)
    for big in (10 ** 30, -(10 ** 600)):
        with pytest.raises(BundleError, match="64-bit"):
            load_bundle(_save({**base, "training": {"epochs": big}}))
    with pytest.raises(BundleError, match="damaged"):
        load_bundle(_save({**base, "training": {"epochs": 10 ** 5000}}))
    # a description part (data.pkl) far bigger than any model's
    with pytest.raises(BundleError, match="description part"):
        load_bundle(_save({**base, "name": "x" * (5 * 2 ** 20)}))
    # a weight on the meta device (no data) with the right shape
    sd = dict(base["state_dict"])
    k = next(iter(sd))
    sd[k] = torch.empty(sd[k].shape, device="meta")
    with pytest.raises(BundleError, match="do not fit"):
        load_bundle(_save({**base, "state_dict": sd}))


@pytest.mark.parametrize("field, value, words", [
    ("dropout", float("inf"), "not a sensible number"),
    ("dropout", "0.1", "should be a number"),
    ("dense", "abc", "should be a list"),
    ("dense", [8.5], "whole number"),
    ("batch_norm", 1, "true or false"),
    ("length", True, "whole number"),
    ("length", -5, "allows 1 to 10,000"),
    ("activation", "r" * 10_000, "characters long"),
])
def test_spec_fields_of_the_wrong_type_or_range(field, value, words):
    base = _cnn_bundle().to_dict()
    with pytest.raises(BundleError, match=words) as e:
        load_bundle(_save({**base, "spec": {**base["spec"], field: value}}), filename="x.pt")
    assert f"'{field}'" in e.value.message and "'x.pt'" in e.value.message


def test_input_that_the_model_does_not_read_is_refused():
    base = _cnn_bundle().to_dict()
    # the CNN was built for 30 letters; its input description says 5000
    with pytest.raises(BundleError, match="does not read the input"):
        load_bundle(_save({**base, "input": {**base["input"], "length": 5000}}))
    with pytest.raises(BundleError, match="n_value"):
        load_bundle(_save({**base, "input": {**base["input"], "n_value": float("nan")}}))


# ---------------------------------------------------------------------------------------------
# the general mechanism: every family is sized on the meta device
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_registered_family_is_sized_on_the_meta_device(kind):
    spec = SPECS[kind]()
    sizes = limits.check_spec_size(spec)
    real = build_model(spec, 0)
    if kind != "esm_head" or not spec.finetune_layers:
        assert sizes["parameters"] == sum(p.numel() for p in real.parameters())
    assert 0 <= sizes["activation_bytes"] <= limits.MAX_ACTIVATION_BYTES


def test_the_activation_estimate_counts_the_big_tensors():
    # one conv layer, no pooling: its output (256 filters × 10,000 positions, float32) must be counted
    spec = CNNSpec(length=10_000, channels=(256,), kernel_sizes=(5,), padding="same", pool="none", dense=())
    est = limits.check_spec_size(spec, InputSpec("one_hot", "dna", length=10_000))["activation_bytes"]
    one = 256 * 10_000 * 4
    assert one <= est <= 4 * one
    # a token model: memory per letter, the longest DNA Predict reads
    tr = TransformerSpec(vocab_size=6, d_model=64, heads=4, layers=2, ff=128)
    sizes = limits.check_spec_size(tr, InputSpec("tokens", "dna"))
    assert sizes["bytes_per_letter"] >= 64 * 4 * 3          # at least a few d_model vectors per letter
    assert sizes["activation_bytes"] == pytest.approx(sizes["bytes_per_letter"] * 10_000)
    # Predict's batches then stay under 256 MB
    batch, budget = limits.predict_batches(sizes, 256, 65_536)
    assert budget * sizes["bytes_per_letter"] <= limits.PREDICT_BATCH_BYTES and batch == 256
    assert limits.predict_batches({}, 256, 65_536) == (256, 65_536)


def test_a_loaded_bundle_carries_its_measured_memory():
    b = load_bundle(_normal_bundles()["transformer"])
    assert b.memory["parameters"] == b.n_parameters and b.memory["bytes_per_letter"] > 0


def test_limits_agree_with_predict_and_esm():
    from playground import predict

    assert limits.MAX_SEQUENCE_LENGTH == predict.MAX_LENGTH
    assert limits.ESM_MAX_RESIDUES == E.MAX_RESIDUES
    assert limits.FIELD_LIMITS["length"][1] == max(predict.MAX_LENGTH.values())
    for (layers, dim, heads), name in limits.ESM2_SIZES.items():
        info = E.CATALOGUE.get(name)
        if info is not None:
            assert (info.layers, info.dim, info.heads) == (layers, dim, heads)


def test_long_histories_are_thinned_in_bundles():
    hist = [{"epoch": i, "train_loss": 1.0 / (i + 1)} for i in range(50_000)]
    thin = thin_history(hist)
    assert len(thin) <= 5000 and thin[0] == hist[0] and thin[-1] == hist[-1]
    assert thin_history(hist[:10]) == hist[:10]


# ---------------------------------------------------------------------------------------------
# ESM-2 checkpoints
def _esm_checkpoint(layers=2, dim=32, heads=4, cfg=None, embed_dim=None) -> bytes:
    """A tiny ESM-2 in fair-esm's layout; ``cfg`` overrides the declared architecture;
    ``embed_dim``: keep only a token embedding of that width (the rest of the weights missing)."""
    m = E.build_esm2(layers, dim, heads, seed=0)
    buf = io.BytesIO()
    E.save_checkpoint(m, buf)
    data = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    if embed_dim is not None:
        data["model"] = {"encoder.sentence_encoder.embed_tokens.weight": torch.zeros(33, embed_dim)}
    for k, v in (cfg or {}).items():
        setattr(data["cfg"]["model"], k, v)
    return _save(data)


ESM_HOSTILE = {
    # declares ESM-2 650M (2.6 GB to build) but holds one 170 kB tensor
    "esm_t33_declared": dict(embed_dim=1280, cfg=dict(encoder_layers=33, encoder_embed_dim=1280,
                                                      encoder_attention_heads=20)),
    "esm_t36_declared": dict(embed_dim=2560, cfg=dict(encoder_layers=36, encoder_embed_dim=2560,
                                                      encoder_attention_heads=40)),
    "esm_too_many_layers": dict(cfg=dict(encoder_layers=60)),
    "esm_too_many_heads": dict(embed_dim=128, cfg=dict(encoder_attention_heads=64, encoder_embed_dim=128)),
    "esm_too_wide": dict(embed_dim=6144, cfg=dict(encoder_embed_dim=6144, encoder_attention_heads=32)),
    "esm_absurd_layers": dict(cfg=dict(encoder_layers=10 ** 9)),
    "esm_layer_missing": dict(cfg=dict(encoder_layers=3)),
}


@pytest.mark.parametrize("name", sorted(ESM_HOSTILE))
def test_esm_checkpoint_with_absurd_architecture_is_refused(name, no_network):
    with pytest.raises(E.CheckpointError) as e:
        E.load_checkpoint_bytes(_esm_checkpoint(**ESM_HOSTILE[name]), f"{name}.pt")
    msg = e.value.message
    assert f"'{name}.pt'" in msg and e.value.hint
    assert any(w in msg for w in ("largest ESM-2", "does not fit", "implausible")), msg


def test_esm_tiny_checkpoint_still_loads_and_bombs_are_refused(no_network):
    h = E.load_checkpoint_bytes(_esm_checkpoint(), "tiny_ok.pt")
    assert h.layers == 2 and h.dim == 32
    parts = _parts(_esm_checkpoint())
    name = [n for n, _ in parts if "/data/" in n][0]
    bomb = _repack([(n, bytes(50_000_000) if n == name else b) for n, b in parts], zipfile.ZIP_DEFLATED)
    with pytest.raises(E.CheckpointError, match="compressed"):
        E.load_checkpoint_bytes(bomb, "bomb.pt")
    with pytest.raises(E.CheckpointError, match="damaged|not a PyTorch"):
        E.load_checkpoint_bytes(_esm_checkpoint()[:-100], "cut.pt")


ESM_MEMORY_SCRIPT = MEMORY_HELPERS + r"""
from playground import esm as E

normal, *hostile = map(Path, sys.argv[1:])
E.load_checkpoint_bytes(normal.read_bytes(), "normal.pt")   # imports fair-esm, builds a tiny ESM-2
E.unload(E.loaded_models()[0].key)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cases = {}
for p in hostile:
    data = p.read_bytes()
    cases[p.stem] = measure(lambda: E.load_checkpoint_bytes(data, p.name), baseline)
print(json.dumps(cases))
"""


def test_absurd_esm_checkpoints_use_little_memory(tmp_path):
    normal = tmp_path / "normal.pt"
    normal.write_bytes(_esm_checkpoint())
    paths = []
    for name, kw in ESM_HOSTILE.items():
        paths.append(tmp_path / f"{name}.pt")
        paths[-1].write_bytes(_esm_checkpoint(**kw))
    cases = _run_python(ESM_MEMORY_SCRIPT, str(normal), *map(str, paths))
    assert len(cases) == len(ESM_HOSTILE)
    for name, case in cases.items():
        assert case["result"] == "CheckpointError", (name, case)
        assert case["grew_mb"] < MEMORY_BUDGET_MB, (name, case)
