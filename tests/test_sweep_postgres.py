"""Two worker processes share one sweep study on a real PostgreSQL server.

The server: ``$PLAYGROUND_TEST_POSTGRES`` (``.ci/run`` starts one from Debian's postgresql package
with ``.ci/postgres.sh``), else this module starts its own with the same script. Where neither
works the test is skipped with the reason; it is never replaced by a mock."""
from __future__ import annotations

import itertools
import os
import subprocess
import uuid
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from playground import sweep as SW  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    url = os.environ.get("PLAYGROUND_TEST_POSTGRES")
    state = None
    if not url:
        state = tmp_path_factory.mktemp("pg") / "state"
        try:
            out = subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "start"], capture_output=True, text=True,
                                 timeout=60, env={**os.environ, "PLAYGROUND_PG_STATE": str(state)})
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"PostgreSQL could not be started: {e}")
        if out.returncode != 0:
            pytest.skip("PostgreSQL could not be started (.ci/postgres.sh): " + (out.stderr.strip()[-300:] or "?"))
        url = out.stdout.strip().splitlines()[-1]
    try:
        SW.open_storage(url, cached=False).engine.dispose()
    except SW.SweepStorageError as e:
        pytest.skip(f"PostgreSQL cannot be reached: {e}")
    yield url
    SW.close_storages()
    if state is not None:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres.sh"), "stop"], capture_output=True, timeout=60,
                       env={**os.environ, "PLAYGROUND_PG_STATE": str(state)})


def test_two_workers_on_one_postgres_study_run_disjoint_trials(postgres_url):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    spec = SW.make_spec("basics", {"lr": [0.01, 0.1, 0.3], "n1": [2, 3]}, base={"dataset": "xor"}, strategy="grid",
                        epochs=10, metric="accuracy")
    SW.create_study(spec, name, postgres_url)
    procs = [SW.start_worker(name, postgres_url) for _ in range(2)]
    try:
        for p in procs:
            assert p.wait(180) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    study = SW.load_study(name, postgres_url)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    by_worker: dict[str, set] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], set()).add((t.params["lr"], t.params["n1"]))
    pids = {str(p.pid) for p in procs}
    assert {w.rsplit(":", 1)[-1] for w in by_worker} == pids           # both workers ran trials ...
    a, b = by_worker.values()
    assert not a & b                                                   # ... disjoint ones
    assert sorted(a | b) == sorted(itertools.product([0.01, 0.1, 0.3], [2, 3]))   # the whole grid, once
    best = study.best_trial
    assert best.value == max(t.value for t in trials)
    assert [t.number for t in trials if t.value == best.value][0] == best.number
    # the study's best is the page's run for its settings, trained here again
    assert SW.train_trial(spec, best.params).value == best.value
    assert f"best: trial {best.number}" in SW.report_text(study)
    assert "playground:***@" in SW.safe_url(SW.storage_url(postgres_url))
