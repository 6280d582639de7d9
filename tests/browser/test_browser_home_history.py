"""Real browser: the landing page's cards lead to the pages; the Run history page lists a run
trained on another page in the same browser session."""
import re
import time

import pytest

from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_home_cards_open_the_pages(server_url, page):
    page.goto(server_url)
    wait_for_app(page)
    page.get_by_role("heading", name=re.compile("Sequence Deep Learning Playground")).first.wait_for()
    page.get_by_role("link", name=re.compile("Open")).first.wait_for()
    deadline = time.time() + 30                      # the cards arrive one after the other
    while page.get_by_role("link", name=re.compile("Open")).count() < 6 and time.time() < deadline:
        time.sleep(0.2)
    assert page.get_by_role("link", name=re.compile("Open")).count() >= 6
    # the sidebar names the landing page "Home", not after its file (app.py)
    home = page.locator('[data-testid="stSidebarNavLink"] span[label="app"] p')
    assert home.evaluate("e => getComputedStyle(e, '::before').content") == '"🏠 Home"'
    assert home.evaluate("e => getComputedStyle(e).fontSize") == "0px"
    page.set_viewport_size({"width": 1400, "height": 1800})
    screenshot(page, "home")
    page.get_by_role("link", name=re.compile("Open")).first.click()
    page.get_by_role("button", name="▶ Play").wait_for()
    assert "Neural_Network_Basics" in page.url


def test_run_history_lists_a_run_trained_on_the_basics_page(server_url, page):
    page.goto(f"{server_url}/Neural_Network_Basics?dataset=gauss&layers=1&n1=3")
    wait_for_app(page)
    for _ in range(3):
        page.get_by_role("button", name="⏭ Step").click()
        wait_for_app(page)
    # navigate inside the same session, as a student would, through the sidebar
    page.locator('[data-testid="stSidebarNav"] a', has_text="Run History").click()
    page.get_by_text("Compare curves").wait_for()
    wait_for_app(page)
    time.sleep(1)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 1
    page.set_viewport_size({"width": 1400, "height": 1400})
    screenshot(page, "run_history")
