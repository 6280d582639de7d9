"""``python -m playground``: the command line for the heavy jobs (train, predict, embed, sweep).

Each subcommand lives in its own module of this package and exposes two functions:
``register(subparsers)`` adds its parser (with ``--help``), and ``run(args) -> int`` does the job.
Modules are imported only when their subcommand runs, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (name, one-line help); each name is a module playground.cli.<name>
SUBCOMMANDS = (
    ("train", "train a page's settings (or a page URL) on a data file and save a model bundle"),
    ("predict", "score sequences with a saved model bundle and write a CSV"),
    ("embed", "embed a FASTA with an ESM-2 model into .npy or .parquet (resumable, batched by tokens)"),
    ("sweep", "hyperparameter sweeps on Optuna: create a study, run workers, report"),
)


def _module(name: str):
    return importlib.import_module(f"playground.cli.{name}")


def build_parser(load: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The top-level parser. ``load``: subcommands whose full parsers are built (default all)."""
    parser = argparse.ArgumentParser(
        prog="python -m playground",
        description="Sequence Deep Learning Playground: the app's jobs from a terminal, a GPU box or a cluster.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in SUBCOMMANDS:
        if load is not None and name not in load:
            sub.add_parser(name, help=text, add_help=False)
            continue
        try:
            mod = _module(name)
        except ModuleNotFoundError as e:  # a subcommand module not written yet, or a missing optional package
            p = sub.add_parser(name, help=f"{text} (unavailable: {e})")
            p.set_defaults(_unavailable=str(e))
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    names = {n for n, _ in SUBCOMMANDS}
    parser = build_parser(None if first not in names else (first,))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if getattr(args, "_unavailable", None):
        print(f"python -m playground {args.command}: unavailable ({args._unavailable})", file=sys.stderr)
        return 2
    from playground.errors import PlaygroundError
    try:
        return int(_module(args.command).run(args) or 0)
    except PlaygroundError as e:  # friendly errors are printed, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
