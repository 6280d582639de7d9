"""The background trainer behind live training (playground.ui.live.TrainingThread): it trains only
between hold() and release(), never while the page holds it, stops by itself when no redraw
keeps it alive, and reports an error instead of raising."""
import time

import pytest

from playground.basics import make_trainer
from playground.ui import live


@pytest.fixture
def fast_keep_alive(monkeypatch):
    monkeypatch.setattr(live, "KEEP_ALIVE", 0.4)


def wait_until(cond, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_trains_after_release_and_not_while_held(fast_keep_alive):
    tr = make_trainer({"dataset": "xor", "seed": 0})
    worker = live.TrainingThread()
    assert not worker.active and tr.steps == 0
    worker.release(tr)
    assert wait_until(lambda: tr.steps > 20), "the thread trains once released"
    worker.hold()
    held_at = tr.steps
    time.sleep(0.15)
    assert tr.steps == held_at, "no training while the page holds the trainer"
    assert len(tr.history) >= 1 and worker.steps == held_at
    worker.release(tr)
    assert wait_until(lambda: tr.steps > held_at)
    # no redraw keeps it alive: it ends on its own
    assert wait_until(lambda: not worker.active, 2.0)
    time.sleep(0.05)
    stopped_at = tr.steps
    time.sleep(0.15)
    assert tr.steps == stopped_at


def test_stop_forgets_the_trainer(fast_keep_alive):
    tr = make_trainer({"dataset": "circle", "seed": 1})
    worker = live.TrainingThread()
    worker.release(tr)
    assert wait_until(lambda: tr.steps > 0)
    worker.stop()
    at = tr.steps
    time.sleep(0.15)
    assert tr.steps == at and not worker.active


def test_same_seed_same_run_in_the_background_or_not(fast_keep_alive):
    """Training in the thread is the same computation: N steps there equal N steps here."""
    a = make_trainer({"dataset": "spiral", "seed": 3})
    worker = live.TrainingThread()
    worker.release(a)
    assert wait_until(lambda: a.steps >= 60)
    worker.stop()
    b = make_trainer({"dataset": "spiral", "seed": 3})
    while b.steps < a.steps:
        b.step()
    assert b.steps == a.steps
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert (pa - pb).abs().max().item() < 1e-6


def test_an_error_ends_the_thread_and_is_kept(fast_keep_alive):
    class Broken:
        done = False

        def run_for(self, seconds):
            raise RuntimeError("CUDA out of memory")

    worker = live.TrainingThread()
    worker.release(Broken())
    assert wait_until(lambda: worker.error is not None)
    assert "CUDA out of memory" in worker.error
    assert wait_until(lambda: not worker.active)


def test_idle_runs_give_their_memory_back(monkeypatch):
    # this process's other runs (page tests that ran before this one) are not part of the count
    monkeypatch.setattr(live, "_LAST_USED", type(live._LAST_USED)())
    tr = make_trainer({"dataset": "xor", "seed": 0})
    busy = make_trainer({"dataset": "xor", "seed": 1})
    tr.step(5)
    live.touch(tr)
    live.touch(busy)
    t0 = live._LAST_USED[tr]
    live.touch(busy)
    live._LAST_USED[busy] = t0 + 100
    assert live.release_idle(now=t0 + 60, idle_s=50) == 1   # only the idle one
    assert tr.released and busy.released is None
    assert len(tr.data.x_train) == 0 and not tr.optimizer.state
    assert tr.steps == 5 and len(tr.history) >= 1          # its record stays readable
    assert live.release_idle(now=t0 + 200, idle_s=50) == 1  # now the other one too, once each
