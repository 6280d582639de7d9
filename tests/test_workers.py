"""Training worker processes (playground.workers): a run that trains in a worker continues
exactly as it would have here, fairly shared with other runs, and comes back when idle or dead."""
import time

import pytest
import torch

from playground.data import toy
from playground.models import MLPSpec, build_model
from playground.train import TrainConfig, Trainer
from playground.workers import TrainingPool


def make_trainer(seed: int = 1, dropout: float = 0.0, **cfg) -> Trainer:
    data = toy.make_split("circle", 400, 0.1, 0.5, seed, ["x1", "x2"])
    spec = MLPSpec(2, (8, 8), "tanh", 1, dropout)
    return Trainer(build_model(spec, seed), data,
                   TrainConfig(optimizer="adam", lr=0.03, batch_size=10, seed=seed, **cfg))


def strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


@pytest.fixture(scope="module")
def pool():
    p = TrainingPool(workers=1, keep_alive_s=5.0)
    if not p.wait_ready(90):
        pytest.skip("the worker process did not start within 90 s")
    yield p
    p.close()


def train_remote(pool, sid, tr, max_steps, timeout=60.0):
    assert pool.start(sid, tr, max_steps=max_steps)
    deadline = time.monotonic() + timeout
    while pool.active(sid) and time.monotonic() < deadline:
        pool.keep_alive(sid)
        time.sleep(0.05)
        pool.sync(sid, tr)
    return pool.take_back(sid, tr)


# a learning-rate schedule (it reads the validation loss) and the best epoch travel with the run
@pytest.mark.parametrize("dropout, cfg", [(0.0, {}), (0.2, {}), (0.0, {"schedule": "step", "schedule_epochs": 6}),
                                          (0.0, {"schedule": "plateau", "schedule_patience": 1})],
                         ids=["plain", "dropout", "step-schedule", "plateau-schedule"])
def test_same_history_in_the_page_process_or_in_a_worker(pool, dropout, cfg):
    here, there = make_trainer(dropout=dropout, **cfg), make_trainer(dropout=dropout, **cfg)
    torch.manual_seed(7)                # dropout draws from torch's global generator
    here.step(425)
    rng_here = torch.get_rng_state()
    torch.manual_seed(7)
    there.step(25)                      # mid-epoch: the worker must continue the same epoch
    assert train_remote(pool, "same", there, max_steps=425)
    assert there.steps == 425
    assert torch.equal(torch.get_rng_state(), rng_here)   # dropout's generator came back too
    here.step(60)
    torch.set_rng_state(rng_here)
    there.step(60)                      # and back here again, still the same run
    assert strip(here.history) == strip(there.history)        # train and validation losses, and the rate
    assert len(here.history) > 5
    assert here.trace == there.trace and here.best_epoch == there.best_epoch >= 1
    assert here.current_lr == there.current_lr
    if cfg.get("schedule") == "step":                             # halved every 2 epochs: 24 epochs in
        assert there.current_lr == pytest.approx(0.03 * 0.5 ** (there.epoch // 2))
    assert here.score_test() == there.score_test()               # the same held-out score, one look each
    for a, b in zip(here.model.state_dict().values(), there.model.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(here.optimizer.state_dict()["state"].values(), there.optimizer.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_snapshots_mirror_the_worker_while_it_trains(pool):
    tr = make_trainer()
    assert pool.start("mirror", tr)
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(seen)) < 3:
        pool.keep_alive("mirror")
        time.sleep(0.1)
        if pool.sync("mirror", tr):
            seen.append(tr.steps)
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen
    assert tr.history[-1]["epoch"] == tr.epoch      # the mirror's history follows its counters
    assert pool.take_back("mirror", tr)
    steps = tr.steps
    tr.step(5)
    assert tr.steps == steps + 5


def test_the_mirror_shows_what_the_page_reads_beside_the_numbers(pool):
    """While a worker trains, the page draws from its local mirror: the confusion matrix and ROC
    from ``val_outputs`` (the validation outputs of the moment of the last record), the status
    line from ``best_epoch`` and ``current_lr``, the loss chart from ``trace``."""
    tr = make_trainer(schedule="step", schedule_epochs=3)      # the rate halves every epoch
    assert pool.start("views", tr)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and tr.epoch < 3:
        pool.keep_alive("views")
        time.sleep(0.1)
        pool.sync("views", tr)
    try:
        assert tr.epoch >= 3
        rec = tr.history[-1]
        out = torch.as_tensor(tr.val_outputs)
        assert float(tr.loss_fn(out, tr.data.y_val)) == pytest.approx(rec["val_loss"], rel=1e-4)
        assert tr.best_epoch == min(tr.history, key=lambda r: r["val_loss"])["epoch"]
        assert tr.current_lr == pytest.approx(0.03 * 0.5 ** tr.epoch)
        assert len(tr.trace) > tr.epoch
    finally:
        pool.take_back("views", tr)


def test_runs_share_a_worker_fairly(pool):
    a, b = make_trainer(1), make_trainer(2)
    assert pool.start("fair-a", a) and pool.start("fair-b", b)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        pool.keep_alive("fair-a")
        pool.keep_alive("fair-b")
        time.sleep(0.1)
    assert pool.take_back("fair-a", a) and pool.take_back("fair-b", b)
    assert a.steps > 50 and b.steps > 50
    assert 0.5 < a.steps / b.steps < 2.0, (a.steps, b.steps)


def test_an_idle_run_comes_back_by_itself(pool):
    tr = make_trainer()
    assert pool.start("idle", tr, keep_alive_s=0.3)
    deadline = time.monotonic() + 20
    while pool.active("idle") and time.monotonic() < deadline:
        time.sleep(0.05)                # no keep_alive: the worker stops and sends the run back
    assert not pool.active("idle")
    assert pool.take_back("idle", tr)
    assert tr.steps > 0


def test_a_dead_worker_reports_an_error_and_the_run_stays_usable():
    p = TrainingPool(workers=1)
    try:
        if not p.wait_ready(90):
            pytest.skip("the worker process did not start within 90 s")
        tr = make_trainer()
        assert p.start("dies", tr)
        deadline = time.monotonic() + 20
        while tr.steps == 0 and time.monotonic() < deadline:
            p.keep_alive("dies")
            time.sleep(0.05)
            p.sync("dies", tr)
        p._workers[0].proc.kill()
        deadline = time.monotonic() + 10
        while p.active("dies") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "worker" in (p.error("dies") or "")
        assert not p.take_back("dies", tr, timeout=1.0)
        assert tr.steps > 0
        tr.step(3)                      # what was last synced trains on here
    finally:
        p.close()


@pytest.mark.parametrize("page", ["dna", "lm", "sequence"])
def test_every_training_page_gives_the_same_history_in_a_worker(pool, page):
    """Workers are on by default in a server: each page's seeded run (a DNA CNN, a masked language
    model with its masking generator, a sequence model) continues in a worker exactly as here."""
    import importlib

    setup = importlib.import_module(f"playground.setups.{page}")
    values = {"epochs": 3} if "epochs" in setup.SCHEMA else {}
    here, there = setup.build(values).make_trainer(), setup.build(values).make_trainer()
    steps = 3 * max(1, here.steps_per_epoch) if hasattr(here, "steps_per_epoch") else 60
    torch.manual_seed(3)
    here.step(steps)
    torch.manual_seed(3)
    there.step(2)
    assert train_remote(pool, f"page-{page}", there, max_steps=steps)
    assert there.steps == here.steps == steps
    assert strip(here.history) == strip(there.history) and len(here.history) >= 1
    for a, b in zip(here.model.state_dict().values(), there.model.state_dict().values()):
        assert torch.equal(a, b)


def test_auto_counts_a_containers_cpu_quota_not_the_hosts_cpus(tmp_path, monkeypatch):
    """``auto`` is one worker per usable core beyond the first: a container limited to one CPU
    (cgroup v2 cpu.max "100000 100000") gets none, whatever the host has."""
    from playground import workers

    one = tmp_path / "one"
    one.write_text("100000 100000\n")
    assert workers.usable_cores(str(one)) == 1
    two = tmp_path / "two"
    two.write_text("150000 100000\n")                 # --cpus 1.5: two cores, partly
    assert workers.usable_cores(str(two)) == min(2, workers.usable_cores(str(tmp_path / "none")))
    unlimited = tmp_path / "max"
    unlimited.write_text("max 100000\n")
    assert workers.usable_cores(str(unlimited)) == workers.usable_cores(str(tmp_path / "none")) >= 1
    monkeypatch.setattr(workers, "usable_cores", lambda: 1)
    monkeypatch.delenv("PLAYGROUND_TRAIN_WORKERS", raising=False)
    assert workers.default_workers() == 0
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    assert workers.default_workers() == 1
    monkeypatch.setenv("PLAYGROUND_TRAIN_WORKERS", "0")
    assert workers.default_workers() == 0
