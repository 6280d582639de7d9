"""``python -m playground embed``: ESM-2 embeddings of a FASTA, on a GPU box or a cluster node.

    python -m playground embed proteins.fasta --model esm2_t33_650M_UR50D --device cuda --dtype bfloat16 \\
        --out proteins.npy                      # proteins.npy (n, 1280) + proteins.ids.txt
    python -m playground embed proteins.fasta --checkpoint my_esm2.pt --layer 4 --out emb.parquet

The numbers are the ESM-2 page's (``playground.esm.embed``: the same cleaning, length batches
under a token budget, pooling and long-sequence policy). The work is written in parts as it goes
(``<out>.parts/``: one ``part-NNNNN.npz`` per group of batches, each written whole or not at all,
plus ``manifest.json`` with the settings); a run that is stopped (Ctrl-C, a SLURM time limit, a
lost node) is started again with the same command and skips every protein already done. The
final file is assembled in the FASTA's order and the parts are removed.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from playground.errors import PlaygroundError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
PART_BATCHES = 32                     # length batches per part file (a part is the unit of resuming)
STOP_ENV = "PLAYGROUND_EMBED_STOP_AFTER"   # stop after this many parts (tests, and trying a resume by hand)

EXAMPLES = """examples:
  python -m playground embed proteins.fasta --out proteins.npy                    # esm2_t6_8M from the hub cache
  python -m playground embed proteins.fasta --model esm2_t33_650M_UR50D --device cuda --dtype bfloat16 \\
      --out proteins.parquet
  python -m playground embed proteins.fasta --checkpoint ~/esm2_t12_35M_UR50D.pt --layer 6 --pooling per_residue \\
      --out residues.npz

Stopped? Run the same command again: finished parts are kept in OUT.parts/ and skipped.
Load the result on the Protein language model page (Embeddings tab, 'Open an embeddings file').
"""


class EmbedCliError(PlaygroundError):
    """A FASTA, model or output that the embed command cannot use."""


class Interrupted(Exception):
    """Raised after ``stop_after`` parts (a simulated interruption)."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "embed", help="embed a FASTA with an ESM-2 model into .npy or .parquet (resumable, batched by tokens)",
        description="ESM-2 embeddings of every protein in a FASTA, batched by token budget, resumable, written "
                    "as .npy (+ .ids.txt), .npz or .parquet. The ESM-2 page loads the result.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fasta", help="proteins (FASTA, .gz too); ids are the first word of each header")
    p.add_argument("-o", "--out", required=True, metavar="FILE",
                   help="FILE.npy (mean pooling; ids in FILE.ids.txt), FILE.npz, or FILE.parquet (needs pyarrow)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=None,
                   help="an ESM-2 name, read from the torch hub cache (default esm2_t6_8M_UR50D)")
    m.add_argument("--checkpoint", metavar="FILE.pt", help="a local ESM-2 checkpoint file instead of --model")
    m.add_argument("--download", action="store_true", help="download --model into the hub cache if it is missing")
    m.add_argument("--untrained", action="store_true",
                   help="random weights of --model's architecture (a dry run: the numbers mean nothing)")
    m.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    m.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="model weights; bfloat16 on CUDA only")
    m.add_argument("--precision", choices=("auto", "float32", "mixed"), default="auto",
                   help="CPU: 'auto' uses bf16 matrix products where the CPU has them (as the page does)")
    e = p.add_argument_group("embeddings")
    e.add_argument("--layer", type=int, default=-1, help="0 = token embeddings ... last (default -1 = last)")
    e.add_argument("--pooling", choices=("mean", "per_residue"), default="mean")
    e.add_argument("--long", choices=("truncate", "window"), default="truncate",
                   help="proteins over 1022 residues: cut, or overlapping windows averaged")
    e.add_argument("--token-budget", type=int, default=None,
                   help="tokens per batch (default: the page's, by device and model size)")
    e.add_argument("--part-batches", type=int, default=PART_BATCHES,
                   help=f"batches per part file, the unit of resuming (default {PART_BATCHES})")
    e.add_argument("--fresh", action="store_true", help="discard finished parts of an earlier run and start over")
    e.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after the final file is written")
    e.add_argument("--threads", type=int, help="CPU threads for PyTorch (default PLAYGROUND_NUM_THREADS or 1)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


# ---------------------------------------------------------------------------------------------
# FASTA
def read_fasta(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(ids, sequences) of a protein FASTA. Raises EmbedCliError naming the line and position of a
    letter ESM-2 cannot read, an empty record, or a repeated id (ids must be unique to resume)."""
    from playground import esm

    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise EmbedCliError(f"'{path}' does not exist or is not a file.", "Check the path.")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if b"\x00" in raw[:4096]:
        raise EmbedCliError(f"'{p.name}' is not a text file (it contains binary data).", "Give a FASTA file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise EmbedCliError(f"{p.name}, line {line}: not UTF-8 text.", "Save the FASTA as plain text.") from None
    ids: list[str] = []
    seqs: list[str] = []
    first_line: dict[str, int] = {}
    cur: list[str] | None = None
    header_line = 0
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith(">"):
            if cur is not None and not "".join(cur):
                raise EmbedCliError(f"{p.name}, line {header_line}: the record '{ids[-1]}' has no sequence.",
                                    "Remove the empty record.")
            pid = s[1:].split()[0] if s[1:].split() else ""
            if not pid:
                raise EmbedCliError(f"{p.name}, line {n}: a header without an id.", "Write '>id' before each protein.")
            if pid in first_line:
                raise EmbedCliError(f"{p.name}, line {n}: the id '{pid}' was already used on line {first_line[pid]}.",
                                    "Give every protein its own id (resuming finds finished proteins by id).")
            first_line[pid] = header_line = n
            ids.append(pid)
            cur = []
            seqs.append("")
            continue
        if cur is None:
            raise EmbedCliError(f"{p.name}, line {n}: sequence text before the first '>' header.",
                                "A FASTA record starts with a '>id' line.")
        body = s.upper().replace(" ", "").replace("\t", "")
        for j, ch in enumerate(body):
            if ch not in esm.ALLOWED and not (ch == "*" and j == len(body) - 1):
                shown = f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"
                col = line.upper().find(ch) + 1 if ch in line.upper() else j + 1
                raise EmbedCliError(
                    f"{p.name}, line {n}, position {col}: {shown} is not an amino-acid letter ESM-2 can read "
                    f"(protein '{ids[-1]}'; allowed: {esm.AMINO_ACIDS} and X B U Z O).",
                    "Remove it or replace it with X (unknown).")
        cur.append(body.rstrip("*"))
        seqs[-1] = "".join(cur)
    if cur is not None and not seqs[-1]:
        raise EmbedCliError(f"{p.name}, line {header_line}: the record '{ids[-1]}' has no sequence.",
                            "Remove the empty record.")
    if not ids:
        raise EmbedCliError(f"'{p.name}' has no FASTA records.", "A FASTA record is a '>id' line and its sequence.")
    return ids, seqs


# ---------------------------------------------------------------------------------------------
# the model
def load_model(model: str | None = None, checkpoint: str | None = None, device: str = "cpu",
               dtype: str = "float32", download: bool = False, untrained: bool = False, seed: int = 0):
    from playground import esm

    if dtype == "bfloat16" and device != "cuda":
        raise EmbedCliError("--dtype bfloat16 is for CUDA GPUs (on a CPU bfloat16 weights are slower and less exact).",
                            "Use --device cuda, or on a CPU --precision mixed (bf16 matrix products, float32 sums).")
    esm.resolve_device(device)
    bf16 = dtype == "bfloat16"
    if checkpoint:
        if model or untrained:
            raise EmbedCliError("Give --checkpoint or --model, not both.")
        return esm.load_checkpoint_file(checkpoint, device=device, bf16=bf16)
    name = model or esm.DEFAULT_MODEL
    if untrained:
        return esm.random_model(name, seed=seed, device=device, bf16=bf16)
    return esm.load_pretrained(name, device=device, bf16=bf16, allow_download=download)


def model_identity(handle) -> str:
    """The model part of a handle's key (without the device): a resumed run must use the same weights."""
    return handle.key.split("|")[0]


# ---------------------------------------------------------------------------------------------
# the resumable job
def parts_dir(out: str | os.PathLike) -> Path:
    p = Path(out)
    return p.with_name(p.name + ".parts")


def _settings(handle, layer: int, pooling: str, long_policy: str, precision: str) -> dict:
    return {"version": MANIFEST_VERSION, "model": model_identity(handle), "model_name": handle.name,
            "dtype": str(handle.dtype).replace("torch.", ""), "precision": precision, "layer": int(layer),
            "pooling": pooling, "long": long_policy}


def seq_digest(seq: str) -> str:
    return hashlib.sha1(seq.encode()).hexdigest()[:16]


def _write_part(path: Path, res, pooling: str) -> None:
    """One part: ids, each sequence's digest (a changed sequence under the same id is redone) and
    the vectors, written whole or not at all."""
    import numpy as np

    from playground.embedding_files import _atomic

    arrays = {"ids": np.array(res.ids, dtype=str), "sha": np.array([seq_digest(s) for s in res.seqs], dtype=str)}
    if pooling == "mean":
        arrays["vectors"] = res.vectors.astype(np.float32)
    else:
        arrays.update({f"seq{k:05d}": a.astype(np.float32) for k, a in enumerate(res.per_residue)})

    def save(t):
        with open(t, "wb") as f:
            np.savez(f, **arrays)

    _atomic(path, save)


def _done_parts(folder: Path, digests: dict[str, str]) -> tuple[dict[str, tuple[Path, int]], int]:
    """id -> (part file, index in it) for every protein a finished part holds with the same sequence
    as now (``digests``: id -> digest), and the next part number."""
    done: dict[str, tuple[Path, int]] = {}
    last = 0
    import numpy as np

    for f in sorted(folder.glob("part-*.npz")):
        try:
            num = int(f.stem.split("-")[1])
            with np.load(f, allow_pickle=False) as z:
                ids = [str(i) for i in z["ids"].tolist()]
                sha = [str(i) for i in z["sha"].tolist()]
        except Exception:  # noqa: BLE001 - a damaged part (cannot happen with the atomic writes): redo it
            f.unlink()
            continue
        last = max(last, num)
        for k, (i, d) in enumerate(zip(ids, sha)):
            if digests.get(i) == d:
                done[i] = (f, k)
    return done, last + 1


def embed_fasta(handle, ids: list[str], seqs: list[str], out: str | os.PathLike, *, layer: int = -1,
                pooling: str = "mean", long_policy: str = "truncate", token_budget: int | None = None,
                precision: str = "auto", part_batches: int = PART_BATCHES, fresh: bool = False,
                keep_parts: bool = False, stop_after: int | None = None, progress=None, log=None) -> dict:
    """Embed ``seqs`` with the page's path (``esm.embed``) in parts under ``<out>.parts/``, skip the
    proteins an earlier run finished, and assemble ``out`` in the input's order.
    ``stop_after``: raise ``Interrupted`` after that many new parts (a simulated interruption).
    ``progress(residues_done, residues_total)``; ``log(text)``. Returns a summary dict."""
    import numpy as np

    from playground import esm
    from playground.embedding_files import write_embeddings

    log = log or (lambda text: None)
    out = Path(out)
    if out.suffix.lower() not in (".npy", ".npz", ".parquet"):
        raise EmbedCliError(f"--out '{out.name}': write .npy, .npz or .parquet.")
    if out.suffix.lower() == ".npy" and pooling != "mean":
        raise EmbedCliError("Per-residue embeddings do not fit one .npy array.", "Write .npz or .parquet instead.")
    if out.suffix.lower() == ".parquet":
        from playground.embedding_files import _need_pyarrow

        _need_pyarrow("Writing .parquet")
    clean = esm.clean_sequences(seqs, ids)
    L = esm._resolve_layer(handle, layer)
    precision = esm.resolve_precision(handle, precision)
    budget = int(token_budget or esm.default_token_budget(handle))
    folder = parts_dir(out)
    settings = _settings(handle, L, pooling, long_policy, precision)
    if fresh and folder.exists():
        for f in folder.iterdir():
            f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    mpath = folder / MANIFEST
    if mpath.is_file():
        old = json.loads(mpath.read_text())
        changed = [k for k in settings if old.get(k) != settings[k]]
        if changed:
            raise EmbedCliError(
                f"{folder} holds parts of a run with other settings ({', '.join(f'{k}: {old.get(k)} -> {settings[k]}' for k in changed)}).",
                "Run with the same settings to resume, or add --fresh to start over.")
    mpath.write_text(json.dumps({**settings, "total": len(ids)}, indent=1))
    digests = {pid: seq_digest(s) for pid, s in zip(ids, clean)}
    done, next_part = _done_parts(folder, digests)
    todo = [i for i, pid in enumerate(ids) if pid not in done]
    if done and len(todo) < len(ids):
        log(f"resuming: {len(ids) - len(todo):,} of {len(ids):,} proteins already embedded in {folder}")
    # the parts: groups of ``part_batches`` length batches, in the batches' (longest first) order
    eff = [min(len(clean[i]), esm.MAX_RESIDUES) for i in todo]
    batches = esm.length_batches(eff, budget)
    groups = [[todo[j] for b in batches[k: k + part_batches] for j in b] for k in range(0, len(batches), part_batches)]
    total = sum(len(s) for s in clean)
    done_res = total - sum(len(clean[i]) for i in todo)
    if progress:
        progress(done_res, total)
    t0 = time.perf_counter()
    written = 0
    for gi, g in enumerate(groups):
        res = esm.embed(handle, [clean[i] for i in g], L, pooling, [ids[i] for i in g], long_policy,
                        token_budget=budget, use_cache=False, precision=precision)
        f = folder / f"part-{next_part:05d}.npz"
        _write_part(f, res, pooling)
        for k, pid in enumerate(res.ids):
            done[pid] = (f, k)
        for w in res.warnings:
            log(f"warning: {w}")
        next_part += 1
        written += 1
        done_res += sum(len(clean[i]) for i in g)
        if progress:
            progress(done_res, total)
        if stop_after is not None and written >= stop_after and gi < len(groups) - 1:
            raise Interrupted(f"stopped after {written} part(s) ({len(done):,} of {len(ids):,} proteins done)")
    seconds = time.perf_counter() - t0
    # assemble in the FASTA's order
    cache: dict[Path, object] = {}

    def get(pid: str):
        f, k = done[pid]
        if f not in cache:
            cache[f] = np.load(f, allow_pickle=False)
        z = cache[f]
        return z["vectors"][k] if pooling == "mean" else z[f"seq{k:05d}"]

    meta = {"model": handle.name, "model_key": model_identity(handle), "layer": L, "pooling": pooling,
            "long": long_policy, "precision": precision, "dtype": settings["dtype"], "untrained": handle.untrained}
    if pooling == "mean":
        vec = np.stack([get(pid) for pid in ids]).astype(np.float32)
        files = write_embeddings(out, ids, vec, seqs=clean, meta=meta)
    else:
        files = write_embeddings(out, ids, per_residue=[get(pid) for pid in ids], seqs=clean, meta=meta)
    for z in cache.values():
        z.close()
    if not keep_parts:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    return {"files": [str(f) for f in files], "proteins": len(ids), "embedded_now": len(todo),
            "parts_written": written, "seconds": seconds, "residues": total, "layer": L, "precision": precision}


# ---------------------------------------------------------------------------------------------
def run(args) -> int:
    from playground.cli.train import Progress

    if args.threads:
        import torch

        torch.set_num_threads(max(1, int(args.threads)))
    if args.part_batches < 1:
        raise EmbedCliError("--part-batches must be at least 1.")
    ids, seqs = read_fasta(args.fasta)
    handle = load_model(args.model, args.checkpoint, args.device, args.dtype, args.download, args.untrained)
    print(f"{handle.describe()}", file=sys.stderr)
    if handle.untrained:
        print("warning: untrained (random) weights: the embeddings mean nothing (a dry run)", file=sys.stderr)
    total = sum(len(s) for s in seqs)
    bar = Progress(total, desc="embed", enabled=not args.quiet, unit="res")

    def progress(done, _total):
        bar.update(done - bar.n)

    stop = os.environ.get(STOP_ENV)
    try:
        summary = embed_fasta(handle, ids, seqs, args.out, layer=args.layer, pooling=args.pooling,
                              long_policy=args.long, token_budget=args.token_budget, precision=args.precision,
                              part_batches=args.part_batches, fresh=args.fresh, keep_parts=args.keep_parts,
                              stop_after=int(stop) if stop else None, progress=progress,
                              log=lambda t: print(t, file=sys.stderr))
    except Interrupted as e:
        bar.close()
        print(f"interrupted: {e}; run the same command again to resume", file=sys.stderr)
        return 130
    bar.close()
    rate = summary["residues"] / summary["seconds"] if summary["seconds"] > 0 and summary["embedded_now"] else 0
    print(f"{summary['proteins']:,} proteins ({summary['embedded_now']:,} embedded now"
          + (f", {rate:,.0f} residues/s" if rate else "") + f"), layer {summary['layer']}, {args.pooling}, "
          f"{summary['precision']} -> {', '.join(summary['files'])}")
    return 0


__all__ = ["register", "run", "read_fasta", "load_model", "embed_fasta", "parts_dir", "Interrupted"]
