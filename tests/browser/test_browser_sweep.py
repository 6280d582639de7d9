"""Real browser: a 4-trial sweep from the Basics page's 🔎 Sweep panel (a worker process in the
background), its live table and Optuna's plots; the best trial's link opens the page with its settings."""
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.browser.conftest import browser_missing_reason, screenshot, start_streamlit, stop_streamlit, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory):
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("optuna")
    db = tmp_path_factory.mktemp("sweep") / "sweeps.db"
    proc, url = start_streamlit(extra_env={"PLAYGROUND_SWEEP_STORAGE": str(db), "PLAYGROUND_SWEEP_MAX_WORKERS": "2"})
    yield url
    stop_streamlit(proc)


def _fill(page, label: str, value: str) -> None:
    box = page.locator(f'input[aria-label="{label}"]')
    box.fill(value)
    box.press("Enter")
    wait_for_app(page)


def test_a_four_trial_sweep_fills_its_table_and_plots(sweep_server, page):
    page.goto(f"{sweep_server}/Neural_Network_Basics?dataset=xor&noise=10")
    wait_for_app(page)
    panel = page.locator('[data-testid="stExpander"]', has_text="🔎 Sweep")
    panel.locator("summary").click()
    wait_for_app(page)
    # the panel offers the learning rate × the first hidden layer's width (2..6 around the page's 4)
    box = page.locator('input[aria-label="n1 · neurons in hidden layer 1"]')
    deadline = time.monotonic() + 30       # (a loaded machine may show the box before its value)
    while box.input_value() != "2..6" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert box.input_value() == "2..6"
    _fill(page, "Trials", "4")
    _fill(page, "Epochs per trial", "2")
    page.get_by_role("button", name="▶ Start the sweep").click()
    # the fragment redraws every 2 s while the workers run, until all 4 trials are in
    page.get_by_text("4 of 4", exact=False).wait_for(timeout=150_000)
    wait_for_app(page)
    time.sleep(1.5)
    plots = panel.locator(".js-plotly-plot")
    assert plots.count() >= 3                          # best so far, parallel coordinates, lr × n1 contour
    assert panel.get_by_text("Parallel coordinates").count() == 1
    assert panel.get_by_text("Best so far").count() == 1
    panel.scroll_into_view_if_needed()
    page.set_viewport_size({"width": 1400, "height": 2600})
    time.sleep(1)
    shot = screenshot(page, "sweep")
    assert shot.stat().st_size > 30_000
    # the best trial's link opens the page with its settings, ready to ▶ Play
    link = panel.get_by_role("link", name="Open the best trial on the page")
    href = link.get_attribute("href")
    query = dict(parse_qsl(urlsplit(href).query))
    assert urlsplit(href).path.endswith("/Neural_Network_Basics") and query["dataset"] == "xor"
    page.goto(href if href.startswith("http") else sweep_server + href)
    page.get_by_role("button", name="▶ Play").wait_for(timeout=60_000)
    wait_for_app(page)
    lr = page.get_by_role("slider", name="Learning rate").first.get_attribute("aria-valuetext")
    assert float(lr) == float(query["lr"])
