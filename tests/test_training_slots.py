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
