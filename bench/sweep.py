"""Benchmark: an 8-trial sweep of the Basics page, one worker process against two on one storage.

The sweep is a grid (learning rate 0.01 / 0.03 / 0.1 / 0.3 x first hidden layer 2 / 4 neurons,
XOR data, ``--epochs`` epochs per trial), so both runs train exactly the same 8 trials. Each run
creates its own study, starts its worker processes (``python -m playground sweep worker``, one
torch thread each) and waits for them; the time includes starting the processes. The storage is
a SQLite file in a temporary folder, or ``$PLAYGROUND_SWEEP_STORAGE`` (e.g. a postgresql:// URL).

    python bench/sweep.py                    # ~1 s of training per trial
    python bench/sweep.py --epochs 300

Ends with the lines  workers: 2 / trials_done: 8 / duplicate_trials: 0 / seconds: S /
parallel_speedup: X  (X = one worker's seconds / two workers' seconds, same trials, this run).
On a machine shared with other jobs the wall-clock speedup says more about the load than about the
sweep: the load average is printed, and ``cpu_parallel_speedup`` (one worker's CPU seconds over the
busiest of the two workers') is the speedup two free cores would give.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground import sweep as SW  # noqa: E402

VARY = {"lr": [0.01, 0.03, 0.1, 0.3], "n1": [2, 4]}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_sweep(storage: str, workers: int, epochs: int) -> dict:
    spec = SW.make_spec("basics", VARY, base={"dataset": "xor", "noise": 10}, strategy="grid", epochs=epochs,
                        metric="accuracy")
    name = f"bench-{workers}w-{uuid.uuid4().hex[:6]}"
    SW.create_study(spec, name, storage)
    cpu0, t0 = children_cpu(), time.perf_counter()
    procs = [SW.start_worker(name, storage) for _ in range(workers)]
    codes, cpus = [], []
    for p in procs:                      # wait4: each worker's own CPU seconds
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        codes.append(p.returncode)
        cpus.append(usage.ru_utime + usage.ru_stime)
    seconds = time.perf_counter() - t0
    study = SW.load_study(name, storage)
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    keys = [tuple(sorted(t.params.items())) for t in trials]
    per_worker: dict[str, int] = {}
    for t in done:
        per_worker[t.user_attrs.get("worker", "?")] = per_worker.get(t.user_attrs.get("worker", "?"), 0) + 1
    return {"name": name, "seconds": seconds, "cpu": children_cpu() - cpu0, "cpus": cpus, "codes": codes,
            "done": len(done),
            "trials": len(trials), "duplicates": len(keys) - len(set(keys)), "per_worker": sorted(per_worker.values()),
            "best": study.best_trial if done else None,
            "train_seconds": sum(float(t.user_attrs.get("seconds", 0)) for t in done)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=150, help="epochs per trial (default 150, about 1 s each)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sweep-bench-")
    storage = os.environ.get(SW.STORAGE_ENV) or str(Path(tmp) / "bench.db")
    print(f"storage: {SW.safe_url(SW.storage_url(storage))}")
    print(f"load_average_before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    one = run_sweep(storage, 1, args.epochs)
    two = run_sweep(storage, 2, args.epochs)
    for label, r in (("one_worker", one), ("two_workers", two)):
        print(f"{label}: {r['seconds']:.2f} s wall, {r['cpu']:.2f} s CPU (workers), {r['done']} of {r['trials']} "
              f"complete, trials per worker {r['per_worker']}, exit codes {r['codes']}")
    if one["best"] is not None and two["best"] is not None:
        same = one["best"].params == two["best"].params and one["best"].value == two["best"].value
        print(f"best: {one['best'].params} validation accuracy {one['best'].value:.4g} "
              f"({'the same trial and value' if same else 'DIFFERENT'} in both runs)")
    print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    # the wall-clock speedup needs two free cores; this one does not: one worker's CPU seconds against the
    # busiest of the two (start-up included), i.e. the speedup two idle cores would give
    print(f"cpu_parallel_speedup: {one['cpus'][0] / max(two['cpus']):.2f} "
          f"(worker CPU seconds: one {one['cpus'][0]:.2f}; two {', '.join(f'{c:.2f}' for c in two['cpus'])})")
    print("workers: 2")
    print(f"trials_done: {two['done']}")
    print(f"duplicate_trials: {two['duplicates']}")
    print(f"seconds: {two['seconds']:.2f}")
    print(f"parallel_speedup: {one['seconds'] / two['seconds']:.2f}")


if __name__ == "__main__":
    main()
