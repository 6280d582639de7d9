"""Real browser: press Play on the basics page and see the loss chart update."""
import time

import pytest

from tests.browser.conftest import epoch_on_page, metric_int, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def steps_on_page(page) -> int:
    return metric_int(page, "Steps")


def pause(page) -> None:
    """One click on Pause stops training: Play comes back and the step count stays put. (Play and
    Pause are two buttons that each do one thing; a single toggle was undone whenever the click
    reached the script twice, folded into the redraw timer's requests.)"""
    page.get_by_role("button", name="⏸ Pause").click()
    page.get_by_role("button", name="▶ Play").wait_for(timeout=15_000)
    wait_for_app(page)
    before = steps_on_page(page)
    time.sleep(1.5)
    assert steps_on_page(page) == before, "training stopped on Pause"


def test_play_trains_and_updates_the_loss_chart(server_url, page):
    page.goto(f"{server_url}/Neural_Network_Basics?dataset=xor&layers=2&n1=6&n2=4&optimizer=adam&lr=0.03")
    wait_for_app(page)
    page.get_by_role("button", name="▶ Play").click()
    page.get_by_role("button", name="⏸ Pause").wait_for()
    deadline = time.time() + 30
    while steps_on_page(page) < 300 and time.time() < deadline:
        time.sleep(0.3)
    first = steps_on_page(page)
    time.sleep(2)
    assert steps_on_page(page) > first > 0  # still training, numbers update live
    pause(page)
    # the loss chart has as many points as epochs trained
    epoch = epoch_on_page(page)
    assert epoch >= 10
    assert page.locator(".js-plotly-plot").count() >= 4
    page.set_viewport_size({"width": 1400, "height": 2400})
    time.sleep(1)
    path = screenshot(page, "basics_after_play")
    assert path.stat().st_size > 20_000
