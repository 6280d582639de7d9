"""Real browser: the ESM-2 page's mutation scan on a server with no weights and downloads switched
off: continue with the untrained t6 architecture, scan a short protein (every position masked in
turn, batched, with a progress bar) and see the 20 × L heatmap with the wild type marked, then the
typed mutations ranked and a wrong wild-type letter named."""
from __future__ import annotations

import urllib.parse

import pytest

from tests.browser.conftest import screenshot, wait_for_app

PROTEIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGK"       # the first 48 residues of ubiquitin


@pytest.mark.browser
def test_protein_mutation_scan_heatmap(offline_server, page):
    query = urllib.parse.urlencode({"tab": "🧬 Mutation scan", "seq": PROTEIN, "mutations": "I44A, K48R, K6E"})
    page.goto(offline_server + "/Protein_Language_Model?" + query)
    wait_for_app(page)
    page.get_by_role("button", name="Continue with a randomly initialised model").click()
    scan = page.get_by_role("button", name=f"Scan all {19 * len(PROTEIN):,} substitutions")
    scan.wait_for(timeout=60_000)
    # the typed mutations are ranked before any full scan
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    scan.click()
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for(timeout=120_000)
    page.get_by_text("Scan as CSV").wait_for()
    wait_for_app(page)
    assert "ESM-1v masked marginals" in chart.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    screenshot(page, "esm_mutation_scan")
    box = page.get_by_label("Mutations (wild type, 1-based position, mutant; e.g. A23G, K45E)")
    box.fill("A2G")
    box.press("Enter")
    page.get_by_text("A2G: position 2 is Q, not A.").wait_for()
