"""Real browser: the ESM-2 page on a server with no weights and downloads switched off.
The offline banner appears, the student continues with untrained weights, reads the masked-LM
heatmap, then embeds the built-in proteins and sees the 2-D projection."""
from __future__ import annotations


import pytest

from tests.browser.conftest import screenshot, wait_for_app


@pytest.mark.browser
def test_offline_banner_masked_lm_and_embeddings(offline_server, page):
    page.goto(offline_server + "/Protein_Language_Model")
    wait_for_app(page)
    page.get_by_text("No pretrained ESM-2 weights available").wait_for()
    go_on = page.get_by_role("button", name="Continue with a randomly initialised model")
    go_on.wait_for()
    wait_for_app(page)
    screenshot(page, "esm_offline_banner")

    go_on.click()
    page.get_by_text("Untrained weights —").wait_for()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    wait_for_app(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 2
    assert page.get_by_text("untrained weights").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.locator('[data-testid="stPlotlyChart"]').nth(1).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "esm_masked_lm_untrained")

    page.get_by_role("tab", name="Embeddings").click()
    wait_for_app(page)
    page.get_by_role("button", name="Embed 300 proteins").click()
    page.get_by_text("Residues per second").wait_for(timeout=120_000)
    wait_for_app(page)
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    chart.scroll_into_view_if_needed()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "PCA: PC1 explains" in chart.inner_text()
    screenshot(page, "esm_embeddings_projection")
