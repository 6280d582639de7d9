"""``python -m playground predict``: a model bundle plus sequences -> a CSV of predictions.

    python -m playground predict model.pt sequences.fasta --out predictions.csv
    python -m playground predict model.pt table.csv.gz --long truncate > predictions.csv
    cat seqs.txt | python -m playground predict model.pt -          # one sequence per line on stdin

The Predict page's own code does the work (``playground.predict``): the same reader and checks
(the same line / position messages for a bad file), the same batches and the same table. Files
of any size are predicted in parts of ``playground.predict.MAX_SEQUENCES`` sequences with the
model loaded once.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

from playground.errors import PlaygroundError

FILE_SUFFIXES = (".fa", ".fasta", ".fna", ".faa", ".fas", ".csv", ".tsv")
EXAMPLES = """examples:
  python -m playground predict dna.pt promoters.fasta --out predictions.csv
  python -m playground predict solubility.pt proteins.csv.gz --long truncate --device cuda -o preds.csv
  printf 'ACGTACGT\\nTTGACCGA\\n' | python -m playground predict dna.pt -

Input: FASTA, CSV/TSV with a 'sequence' column, or one sequence per line (plain or .gz). Toy models
(Neural network basics) read 'x1, x2' points, one per line. Errors name the line and the position.
"""


class PredictCliError(PlaygroundError):
    """A bundle or input file that cannot be used from the command line."""


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict", help="score sequences with a saved model bundle and write a CSV",
        description="Predict with a model bundle (a page's '⬇️ Model (.pt)' or `train --out`): the Predict page's "
                    "reader, checks and table, from a terminal.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="the model bundle (.pt)")
    p.add_argument("sequences", help="FASTA / CSV / TSV / one sequence per line (.gz too); '-' reads stdin")
    p.add_argument("-o", "--out", metavar="FILE.csv", help="write the CSV here (default: standard output)")
    p.add_argument("--long", choices=("reject", "truncate"), default="reject",
                   help="sequences longer than a fixed-length model reads: refuse them (default) or cut them")
    p.add_argument("--map-aliases", action="store_true",
                   help="map rare letters as the page's toggle does (U -> T for DNA; B Z U O -> X for proteins)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def read_sequences(bundle, path: str, long_policy: str = "reject", map_aliases: bool = False):
    """The input file read for ``bundle`` by the Predict page's reader (``predict.read_input``):
    a FASTA / CSV / TSV file by its name, other text as the page reads pasted text (FASTA, a table
    with a header, or one sequence per line). Raises SequenceFileError naming the line and position."""
    from playground.predict import read_input

    if path == "-":
        raw, name = sys.stdin.buffer.read(), "stdin.txt"
    else:
        p = Path(os.path.expanduser(path))
        if not p.is_file():
            raise PredictCliError(f"'{path}' does not exist or is not a file.", "Check the path.")
        raw, name = p.read_bytes(), p.name
    kw = dict(long_policy=long_policy, map_aliases=map_aliases, max_sequences=10 ** 8, max_bytes=len(raw) + 1)
    if bundle.input.kind == "features":
        return read_input(bundle, data=raw, filename=name, **kw)
    stem = name[:-3] if name.lower().endswith(".gz") else name
    body = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    if Path(stem).suffix.lower() in FILE_SUFFIXES or b"\x00" in body[:4096]:
        return read_input(bundle, data=raw, filename=name, **kw)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return read_input(bundle, data=raw, filename=name, **kw)   # the reader's own message for it
    kw["max_bytes"] = len(body) + 1
    return read_input(bundle, text=text, **kw)


class _Part:
    """A slice of parsed sequences, shaped as ``predict.predict`` reads them."""

    def __init__(self, ids, seqs, warnings):
        self.ids, self.seqs, self.warnings = ids, seqs, warnings

    def __len__(self) -> int:
        return len(self.ids)


def predict_file(bundle, parsed, device: str = "cpu", progress=None):
    """A DataFrame of predictions (the Predict page's table) for everything read, in parts of at
    most MAX_SEQUENCES with the model loaded once. Returns (frame, warnings)."""
    import pandas as pd

    from playground.predict import MAX_SEQUENCES, load_model, predict

    model = load_model(bundle, device)
    n = len(parsed)
    if bundle.input.kind == "features" or n <= MAX_SEQUENCES:
        res = predict(bundle, parsed, model=model, device=device, progress=progress)
        return res.frame(), list(res.warnings)
    frames, warnings = [], list(parsed.warnings)
    for start in range(0, n, MAX_SEQUENCES):
        part = _Part(parsed.ids[start: start + MAX_SEQUENCES], parsed.seqs[start: start + MAX_SEQUENCES], [])
        cb = (lambda d, t, m, s=start: progress(s + d, n, m)) if progress else None
        res = predict(bundle, part, model=model, device=device, progress=cb)
        frames.append(res.frame())
        warnings += [w for w in res.warnings if w not in warnings]
    return pd.concat(frames, ignore_index=True), warnings


def run(args) -> int:
    import csv

    from playground.bundle import load_bundle
    from playground.cli.train import Progress
    from playground.data.parsing import SequenceFileError

    bundle = load_bundle(args.bundle)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise PredictCliError("--device cuda: PyTorch sees no GPU here.", "Use --device cpu.")
    try:
        parsed = read_sequences(bundle, args.sequences, args.long, args.map_aliases)
    except SequenceFileError as e:
        raise SequenceFileError(f"{args.sequences}: {e.message}", e.line, e.hint) from None
    bar = Progress(len(parsed), desc="predict", enabled=not args.quiet, unit="seq")

    def progress(done, total, msg):
        bar.update(done - bar.n)

    try:
        frame, warnings = predict_file(bundle, parsed, args.device, progress)
    finally:
        bar.close()
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    kw = dict(index=False, float_format="%.6g", quoting=csv.QUOTE_MINIMAL)
    if args.out and args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, **kw)
        print(f"{len(frame):,} predictions ({bundle.title()}) -> {args.out}", file=sys.stderr)
    else:
        frame.to_csv(sys.stdout, **kw)
    return 0


__all__ = ["register", "run", "read_sequences", "predict_file"]
