"""Real browser: on the DNA page, press Play on planted CTCF, pause, and see the filters as
logos with the motif recovered; screenshots of the logos and of a sequence's saliency/ISM."""
import time

import pytest

from tests.browser.conftest import epoch_on_page, metric, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_play_trains_and_filters_become_the_planted_motif(server_url, page):
    page.goto(f"{server_url}/DNA_CNN?dataset=planted&motif=CTCF&lr=0.01&seed=1&tab=%F0%9F%A7%A9+Filters+%E2%86%92+logos")
    wait_for_app(page)
    page.get_by_role("tab", name="🧩 Filters → logos").wait_for()
    page.get_by_role("button", name="▶ Play").click()
    page.get_by_role("button", name="⏸ Pause").wait_for()
    deadline = time.time() + 120
    while epoch_on_page(page) < 5 and time.time() < deadline:
        time.sleep(0.5)
    assert epoch_on_page(page) >= 5, "training advances live while playing"
    page.get_by_role("button", name="⏸ Pause").click()
    page.get_by_role("button", name="▶ Play").wait_for()
    wait_for_app(page)
    # logos of the filters and the JASPAR table (shown when paused)
    page.locator('[data-testid="stImage"] img').first.wait_for()
    page.get_by_text("Best JASPAR matches").wait_for()
    recovered = float(metric(page, "Motif recovered: CTCF"))
    assert recovered >= 0.8
    assert float(metric(page, "Test accuracy")) > 0.85
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    wait_for_app(page)
    page.set_viewport_size({"width": 1400, "height": 1900})
    time.sleep(1)
    path = screenshot(page, "dna_filters_logos")
    assert path.stat().st_size > 30_000

    # explain a sequence that carries the motif: saliency + ISM with the site boxed
    page.get_by_role("tab", name="🔬 Explain a sequence").click()
    wait_for_app(page)
    page.get_by_text("In-silico mutagenesis").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 2
    time.sleep(1)
    path = screenshot(page, "dna_explain_sequence")
    assert path.stat().st_size > 20_000
