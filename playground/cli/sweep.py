"""``python -m playground sweep``: hyperparameter sweeps on Optuna (see playground/sweep.py).

    python -m playground sweep create --page basics --vary lr=0.003..0.3 --vary n1=2..8 --strategy grid --epochs 20
    python -m playground sweep worker --study NAME            # as many as you like, anywhere the storage reaches
    python -m playground sweep report --study NAME            # the table, the best trial and its page link
    python -m playground sweep list

The storage is a SQLite file (./sweeps/sweeps.db) unless --storage or $PLAYGROUND_SWEEP_STORAGE
names another file or a postgresql://user:password@host/database URL.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys

EPILOG = """\
--vary takes NAME=VALUES: a list (lr=0.001,0.01,0.1; a list setting separates its values with ';'),
or a range for an int or float setting (n1=2..8, dropout=0..0.5, lr=0.0001..0.1:log; options :log,
:step=X and, for a grid over a float range, :n=K points). A setting with fixed choices (the learning
rate slider) takes its choices inside the range.

Storage: --storage, else $PLAYGROUND_SWEEP_STORAGE, else the SQLite file ./sweeps/sweeps.db.
With postgresql://user:password@host:5432/db, workers on many machines join one study.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="hyperparameter sweeps on Optuna: create a study, run workers, report",
                              description="Hyperparameter sweeps of a training page's settings on Optuna. Every "
                                          "trial is the page's own run with its seed, scored on the validation set.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sweep_command", metavar="ACTION")
    storage_help = "SQLite file or database URL (default: $PLAYGROUND_SWEEP_STORAGE or ./sweeps/sweeps.db)"

    c = sub.add_parser("create", help="create a study (optionally run workers for it right away)",
                       description="Create a sweep study from a page's settings and what varies.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--page", help="basics, dna or sequence (or taken from --url)")
    c.add_argument("--url", help="a page link whose settings are the base of every trial")
    c.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a base setting (URL text, e.g. dataset=xor); repeat for more")
    c.add_argument("--vary", action="append", default=[], metavar="NAME=VALUES", required=True,
                   help="a setting to vary (see below); repeat for more")
    c.add_argument("--strategy", choices=("grid", "random", "tpe"), default="tpe")
    c.add_argument("--n-trials", type=int, help="trials (random, tpe; a grid runs its own size). Default 10")
    budget = c.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="epochs per trial (default 10)")
    budget.add_argument("--seconds", type=float, help="seconds per trial instead (whole epochs; not reproducible "
                                                      "under load)")
    c.add_argument("--metric", default="loss", help="validation metric: loss, accuracy, auroc, mcc, f1, pearson_r, "
                                                    "r2, q3 (default loss)")
    c.add_argument("--direction", choices=("minimize", "maximize"), help="default: minimize the loss, maximize others")
    c.add_argument("--seed", type=int, help="seed of the samplers (default: the page's seed)")
    c.add_argument("--pruning", action="store_true", help="stop poor trials early (Optuna's median pruner)")
    c.add_argument("--name", help="study name (default PAGE-DATE-TIME-XXXX)")
    c.add_argument("--storage", help=storage_help)
    c.add_argument("--workers", type=int, default=0, help="also run this many workers now, here (default 0)")
    c.add_argument("--json", action="store_true", help="print the study's name and spec as JSON")

    w = sub.add_parser("worker", help="run trials of a study until it has all its trials",
                       description="Run trials of a study. Start as many as you like, in processes or on machines "
                                   "that reach the storage; each trial runs once. Ctrl-C or SIGTERM marks the "
                                   "running trial failed; a worker killed outright has its trial marked failed "
                                   "by the next worker or reader after its heartbeat goes stale.")
    w.add_argument("--study", required=True, help="the study's name")
    w.add_argument("--storage", help=storage_help)
    w.add_argument("--n-trials", type=int, help="run at most this many trials in this worker")
    w.add_argument("--device", choices=("cpu", "cuda"), help="train here on this device (overrides the setting)")
    w.add_argument("--quiet", action="store_true", help="no line per trial")

    r = sub.add_parser("report", help="the trials, the best trial and its page link",
                       description="Print the study's trials, the best one and the link that opens its page "
                                   "with its settings.")
    r.add_argument("--study", required=True)
    r.add_argument("--storage", help=storage_help)
    r.add_argument("--base-url", default="", help="the app's address for the links, e.g. http://localhost:8501")
    r.add_argument("--csv", help="also write the table to this CSV file")

    ls = sub.add_parser("list", help="the sweep studies in a storage")
    ls.add_argument("--storage", help=storage_help)
    ls.add_argument("--page", help="only this page's studies")
    p.set_defaults(_parser=p)


def _stop_on_sigterm() -> None:
    """SIGTERM (a cluster's time limit, the app's Stop) ends the worker like Ctrl-C: the running
    trial is told FAIL first."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:       # not the main thread
        pass


def run(args) -> int:
    from playground import sweep as SW

    cmd = getattr(args, "sweep_command", None)
    if cmd is None:
        args._parser.print_help()
        return 0
    if cmd == "create":
        base: dict = {}
        page = args.page
        if args.url:
            page_u, base, warns = SW.settings_from_url(args.url, args.page)
            page = page_u
            for msg in warns:
                print(f"warning: {msg}", file=sys.stderr)
        if not page:
            raise SW.SweepError("Which page's settings should the sweep vary?", "Give --page basics|dna|sequence "
                                "or --url with a page link.")
        schema = SW.schema_of(page)
        for item in args.set:
            name, sep, raw = item.partition("=")
            if not sep or name not in schema:
                raise SW.SweepError(f"--set {item!r}: expected NAME=VALUE with a setting of the {SW.page_key(page)} "
                                    "page.", f"Its settings: {', '.join(schema.settings_names)}.")
            try:
                base[name] = schema[name].decode(raw)
            except ValueError as e:
                raise SW.SweepError(f"--set {item!r}: {e}.") from None
        vary = dict(SW.parse_vary(v) for v in args.vary)
        spec = SW.make_spec(page, vary, base=base, strategy=args.strategy, n_trials=args.n_trials,
                            epochs=args.epochs, seconds=args.seconds, metric=args.metric, direction=args.direction,
                            seed=args.seed, pruning=args.pruning)
        for msg in SW.spec_warnings(spec):
            print(f"warning: {msg}", file=sys.stderr)
        study = SW.create_study(spec, args.name, args.storage)
        if args.json:
            print(json.dumps({"study": study.study_name, "storage": SW.safe_url(SW.storage_url(args.storage)),
                              "spec": json.loads(spec.to_json())}))
        else:
            print(f"created study {study.study_name} in {SW.safe_url(SW.storage_url(args.storage))}")
            print(spec.describe())
            print(f"run workers: python -m playground sweep worker --study {study.study_name}"
                  + (f" --storage {args.storage}" if args.storage else ""))
        if args.workers > 0:
            return _run_here(study.study_name, args.storage, args.workers)
        return 0
    if cmd == "worker":
        _stop_on_sigterm()
        counts = SW.run_worker(args.study, args.storage, n_trials=args.n_trials, device=args.device,
                               log=None if args.quiet else (lambda line: print(line, flush=True)))
        print(f"worker {counts['worker']}: {counts['done']} done, {counts['pruned']} pruned, "
              f"{counts['failed']} failed", flush=True)
        return 0
    if cmd == "report":
        study = SW.load_study(args.study, args.storage)
        print(SW.report_text(study, args.base_url))
        if args.csv:
            import pandas as pd

            pd.DataFrame(SW.trial_rows(study, args.base_url)).to_csv(args.csv, index=False)
            print(f"wrote {args.csv}")
        return 0
    if cmd == "list":
        rows = SW.list_studies(args.storage, args.page)
        if not rows:
            print(f"no sweep studies in {SW.safe_url(SW.storage_url(args.storage))}")
        for r in rows:
            print(f"{r['name']}  {r['created']}  {r['trials']} trials  {r['spec']}")
        return 0
    return 2


def _run_here(name: str, storage: str | None, n: int) -> int:
    """``create --workers N``: N worker processes on this machine, waited for."""
    import subprocess

    from playground.sweep import worker_command, worker_env

    procs = [subprocess.Popen(worker_command(name), env=worker_env(storage)) for _ in range(n)]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        return 130
