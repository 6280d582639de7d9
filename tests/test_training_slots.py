"""playground.ui.live.TrainingSlots: at most n background trainers of a process train at once,
first come first served; a waiting trainer that is held gives up its place."""
import threading
import time

from playground.ui.live import TrainingSlots


def test_one_slot_is_taken_in_turn_and_a_held_waiter_leaves_the_queue():
    slots = TrainingSlots(1)
    assert slots.acquire(lambda: False)            # free: taken at once
    order, held = [], threading.Event()

    def waiter(name, abort=lambda: False):
        if slots.acquire(abort):
            order.append(name)
            time.sleep(0.02)
            slots.release()
        else:
            order.append(f"{name} gave up")

    threads = [threading.Thread(target=waiter, args=("a",)),
               threading.Thread(target=waiter, args=("b", held.is_set)),
               threading.Thread(target=waiter, args=("c",))]
    for t in threads:
        t.start()
        time.sleep(0.03)                           # queue in this order
    held.set()                                     # b is held (paused) while waiting
    time.sleep(0.15)
    slots.release()
    for t in threads:
        t.join(5)
    assert order == ["b gave up", "a", "c"]
    assert slots.acquire(lambda: False)            # all handed back: free again
    slots.release()


# ------------------------------------------------------------------------------------------------
# live.Scheduler: a process-wide budget of redraws, measured from the process's CPU
import types

import pytest

from playground.ui import live
from playground.ui.live import FullRuns, Scheduler


def test_the_budget_steers_showing_to_its_share_of_a_core_and_the_period_grows_with_the_class():
    """The scheduler steers ``cost`` until showing takes its share of one core. A model server:
    per second a fixed 0.15 s of showing (timers, sockets) plus 25 ms per redraw, and redraws as
    fast as the budget's gap lets them start. Wherever it starts, it settles at the share, and the
    period of 21 students is then 21 gaps."""
    share = live.LOCAL_DRAW_SHARE
    for start in (0.005, 0.05, 0.2):
        clock, cpu = [0.0], [0.0]
        s = Scheduler(clock=lambda: clock[0], cpu=lambda: cpu[0])
        s.cost = start
        s._share = share
        s.release(0.01)                            # opens the first window
        for _ in range(30):                        # 30 windows of 1 s
            rate = 1.0 / s.gap(share)              # redraws the gap lets start in a second
            n = max(1, int(rate))
            for _ in range(n):
                clock[0] += 1.0 / n
                cpu[0] += (0.15 + 0.025 * rate) / n
                s.release(0.01)
        used = 0.15 + 0.025 / s.gap(share)
        assert used == pytest.approx(share, rel=0.15), start
    assert s.gap(0.5) == pytest.approx(s.cost / 0.5)
    s.seen("alone")
    assert s.period(remote=False) == pytest.approx(max(live.MIN_PERIOD, s.cost / share))
    for i in range(20):
        s.seen(f"student {i}")
    p20 = s.period(remote=False)
    assert p20 == pytest.approx(min(live.MAX_PERIOD, 21 * s.cost / share))
    # over the share: dearer; never cheaper than the redraw's own CPU, whatever the windows say
    before = s.cost
    for _ in range(5):
        clock[0] += 1.0
        cpu[0] += 1.0
        s.release(0.01)
    assert s.cost > before
    for _ in range(40):
        clock[0] += 1.0
        s.release(0.03)
    assert s.cost >= 0.9 * s.draw_cost > 0.02


def test_redraws_start_no_closer_than_the_budgets_gap_and_a_click_cuts_the_wait():
    s = Scheduler(cpu=lambda: 0.0)
    s.cost = 0.02                                   # gap at half a core: 40 ms
    starts = []
    for _ in range(5):
        assert s.acquire(lambda: False, remote=False)
        starts.append(time.monotonic())
        s.release(0.001)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.035, gaps
    s.cost = 2.0                                    # a 4 s gap after the next: a click must not wait for it
    assert s.acquire(lambda: False, remote=False)
    s.release(0.001)
    t0 = time.monotonic()
    clicked = threading.Event()
    threading.Timer(0.05, clicked.set).start()
    assert not s.acquire(clicked.is_set, remote=False)
    assert time.monotonic() - t0 < 0.5


def test_a_full_run_goes_before_redraws_and_training_until_it_ends():
    runs = FullRuns()
    ctx = types.SimpleNamespace(fragment_ids_this_run=[])
    ends = threading.Event()
    script = threading.Thread(target=ends.wait, args=(5,))
    script.start()
    runs.start(ctx, script)                         # a click's full run, in its script thread
    assert runs.active()
    s = Scheduler(cpu=lambda: 0.0, full_runs=runs)
    slots = TrainingSlots(1, yield_to=runs)
    got = {}

    def redraw():
        got["redraw"] = s.acquire(lambda: False) and time.monotonic()

    def train():
        got["train"] = slots.acquire(lambda: False) and time.monotonic()

    threads = [threading.Thread(target=redraw), threading.Thread(target=train)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert got == {}, "both wait while the click's run is in progress"
    t_end = time.monotonic()
    ctx.fragment_ids_this_run = ["live"]            # the script thread went on to a fragment run
    for t in threads:
        t.join(2)
    assert got["redraw"] - t_end < 0.3 and got["train"] - t_end < 0.3
    assert not runs.active()
    # a run whose thread ended is over too; and priority never lasts past CLICK_PRIORITY_S
    runs.start(types.SimpleNamespace(fragment_ids_this_run=[]), script)
    ends.set()
    script.join(2)
    assert not runs.active()
    runs.start(types.SimpleNamespace(fragment_ids_this_run=[]), threading.current_thread())
    assert runs.active()
    t0 = time.monotonic()
    runs.wait()
    assert time.monotonic() - t0 < live.CLICK_PRIORITY_S + 0.3
    slots.release()


def test_a_free_slot_given_up_at_once_is_handed_back_without_a_deadlock():
    """The free slot's holder is held before it trains (abort() true at once): it gives the slot
    back (this used to deadlock on the slots' own lock, and every trainer of the process stopped)."""
    slots = TrainingSlots(1, yield_to=FullRuns())
    done = []
    t = threading.Thread(target=lambda: done.append(slots.acquire(lambda: True)))
    t.start()
    t.join(2)
    assert done == [False], "acquire returned (no deadlock) and gave the slot up"
    assert slots.acquire(lambda: False)           # and the slot is free again
    slots.release()


def test_the_browser_waits_out_its_period_itself_and_never_twice_the_same_interval():
    """A redraw tells the browser when to ask again (Streamlit's auto_rerun message): the rest of
    its period, asked a little early, capped, and never the interval it already has (the frontend
    restarts its timer only on a new interval: the restart is what makes it wait for delivery)."""
    bi = live.browser_interval
    assert bi(1.0, 0.05, None) == pytest.approx(live.BROWSER_EAGER * 1.0 - 0.05, abs=0.006)
    assert bi(1.0, 0.05, None, lag=0.2) < bi(1.0, 0.05, None)          # the way back counts
    assert bi(0.1, 0.08, None) == live.MIN_INTERVAL                      # one student: at once
    assert bi(5.0, 0.0, None) == live.BROWSER_MAX_INTERVAL               # a busy burst: not stuck
    first = bi(1.0, 0.05, None)
    second = bi(1.0, 0.05, first)
    assert second != first and abs(second - first) < 0.002
    assert bi(1.0, 0.05, second) != second


def test_the_next_redraw_is_the_session_that_waited_longest_since_its_last():
    """Turns go to the waiting session whose last redraw is oldest (arrival order among equals):
    a browser that asks more often, or a session that started playing earlier, gets no more of
    them. Nobody drawing and no budget gap in the way: the order alone decides."""
    import threading

    s = Scheduler(cpu=lambda: 0.0)
    s.cost = 1e-4
    order = []

    def redraw(who):
        assert s.acquire(lambda: False, budget=False, who=who)
        order.append(who)
        s.release(0.0, counted=False)

    redraw("eager")                     # drew just now
    s._drawing = True                   # someone is drawing: the next two wait in line
    t1 = threading.Thread(target=redraw, args=("eager",))
    t1.start()
    time.sleep(0.05)                    # "eager" asked first ...
    t2 = threading.Thread(target=redraw, args=("patient",))
    t2.start()                          # ... "patient" never drew
    time.sleep(0.05)
    with s._cond:
        s._drawing = False
        s._cond.notify_all()
    t1.join(2)
    t2.join(2)
    assert order == ["eager", "patient", "eager"]


def test_a_clicks_redraw_goes_before_the_class_and_a_session_redraws_at_most_every_min_period():
    """⏸ Pause in the live view is a redraw of its own fragment: it goes before the sessions
    waiting for their turn (else it waited behind the whole class). And one session, however
    early its browser asks, redraws at most every MIN_PERIOD."""
    import threading

    from playground.ui.live import MIN_PERIOD

    s = Scheduler(cpu=lambda: 0.0)
    s.cost = 1e-4
    order = []

    def redraw(who, first=False):
        assert s.acquire(lambda: False, budget=False, who=who, first=first)
        order.append(who)
        s.release(0.0, counted=False)

    s._drawing = True
    waiting = [threading.Thread(target=redraw, args=(f"s{i}",)) for i in range(3)]
    for t in waiting:
        t.start()
        time.sleep(0.02)
    click = threading.Thread(target=redraw, args=("clicker", True))
    click.start()
    time.sleep(0.05)
    with s._cond:
        s._drawing = False
        s._cond.notify_all()
    for t in waiting + [click]:
        t.join(2)
    assert order[0] == "clicker" and sorted(order[1:]) == ["s0", "s1", "s2"]

    starts = []
    for _ in range(4):                  # a lone session within the budget: spaced by MIN_PERIOD
        assert s.acquire(lambda: False, who="alone")
        starts.append(time.monotonic())
        s.release(0.0)
    assert min(b - a for a, b in zip(starts, starts[1:])) >= MIN_PERIOD - 0.01


def test_a_pending_click_is_told_from_the_timer():
    """A rerun a person asked for (not an auto-rerun, or one carrying a button's trigger, which
    Streamlit keeps when it folds timer ticks into it) makes a waiting timer redraw give way."""
    from streamlit.proto.WidgetStates_pb2 import WidgetStates
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    from playground.ui.live import _is_click

    tick = RerunData(fragment_id_queue=["f"], is_auto_rerun=True, widget_states=WidgetStates())
    assert not _is_click(tick)
    assert _is_click(RerunData(fragment_id_queue=["f"], is_auto_rerun=False))
    ws = WidgetStates()
    w = ws.widgets.add()
    w.id, w.trigger_value = "pause", True
    assert _is_click(RerunData(fragment_id_queue=["f"], is_auto_rerun=True, widget_states=ws))
    w.trigger_value = False
    assert not _is_click(RerunData(fragment_id_queue=["f"], is_auto_rerun=True, widget_states=ws))
