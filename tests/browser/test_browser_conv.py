"""Real browser: the DNA page's "✋ Convolution by hand" tab on the workshop's example. Step the
window three times with ▶ step: the heading, the feature-map value and the growing track
follow. Screenshots on a laptop screen and in projector mode."""
from urllib.parse import quote

import pytest

from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

TAB = "✋ Convolution by hand"
# the values each window's heading and tile show for CCG (the workshop's feature map 1 3 1 0 1 1 1 2 1)
CCG = [1, 3, 1, 0, 1, 1, 1, 2, 1]

TRACK_JS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd._fullData || []).filter(t => t.name === 'feature map');
    if (t.length) return t.map(tr => Array.from(tr.z[0]).map(v => (v === null || Number.isNaN(v)) ? null : Number(v)));
  }
  return null;
}"""


def tile(page, label: str) -> str:
    txt = page.locator('[data-testid="stMetric"]', has_text=label).first.inner_text()
    return txt.split("\n")[-1].strip()


def charts_drawn(page) -> None:
    """Wait until the tab's three plotly charts are drawn (plotly renders after the script run)."""
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
                           timeout=30_000)
    page.wait_for_timeout(400)


def step_three(page) -> None:
    for n in range(2, 5):
        page.get_by_role("button", name="▶ step").click()
        page.get_by_text(f"Window {n} of 9").wait_for()
        wait_for_app(page)
        assert tile(page, "CCG: sum + bias") == str(CCG[n - 1])


def test_step_the_convolution_three_windows(server_url, page):
    page.set_viewport_size({"width": 1366, "height": 2800})          # a laptop's width (tall: the whole tab)
    page.goto(f"{server_url}/DNA_CNN?tab={quote(TAB)}")
    wait_for_app(page)
    page.get_by_text("Window 1 of 9").wait_for()
    step_three(page)
    page.wait_for_url("**conv_window=4**", timeout=10_000)              # the window shown is in the link
    track = page.evaluate(TRACK_JS)
    assert track[0] == [1, 3, 1, 0, None, None, None, None, None]   # CCG's map, grown to window 4
    assert track[1][:4] == [0, 0, 0, 1]                               # TTA's
    page.get_by_text("max-pool 2: [3, 1, 1, 2]").wait_for()
    page.get_by_text("gives the same feature maps").wait_for()
    charts_drawn(page)
    screenshot(page, "conv_by_hand")

    page.set_viewport_size({"width": 1600, "height": 3000})          # projector mode on a wide screen
    page.goto(f"{server_url}/DNA_CNN?tab={quote(TAB)}&projector=1&conv_window=4")
    wait_for_app(page)
    page.get_by_text("Window 4 of 9").wait_for()
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '20px'", timeout=60_000)
    assert tile(page, "CCG: sum + bias") == "0"
    charts_drawn(page)
    screenshot(page, "conv_by_hand_projector")
