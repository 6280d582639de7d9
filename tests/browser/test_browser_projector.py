"""Real browser: a lesson step opened in projector mode from a teacher's link. Big text, thick
plot lines, hidden and locked controls; Next applies the next step; Play trains and the
sidebar's check turns green. Screenshot for a look at it as a class would see it."""
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from playground import lessons as L
from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def css_of(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"el => getComputedStyle(el).getPropertyValue('{prop}')")


def test_lesson_step_in_projector_mode(server_url, page):
    les = L.find("cubic")
    query = {**L.step_query(les, 1, projector=True), "lock": "dataset,features"}
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(f"{server_url}/{L.page_url_path(les.step(1).page_info)}?{urlencode(query)}")
    wait_for_app(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Lesson 2: The cubic").wait_for()
    sidebar.get_by_text("Step 1 of 4").wait_for()

    # projector mode: larger text, thicker plot lines
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '20px'",
                           timeout=20_000)   # the projector CSS arrives with the sidebar
    assert css_of(page, "html", "font-size") == "20px"
    page.locator(".js-plotly-plot .scatterlayer .js-line").first.wait_for(state="attached")
    assert float(css_of(page, ".js-plotly-plot .scatterlayer .js-line", "stroke-width").rstrip("px")) >= 4
    # the lesson hides the regularisation controls; the link locks the data set
    assert page.locator(".st-key-basics-reg").count() == 1 and not page.locator(".st-key-basics-reg").is_visible()
    assert css_of(page, ".st-key-basics-dataset", "pointer-events") == "none"
    assert page.locator(".st-key-basics-lr").is_visible()

    # Next: step 2's settings arrive in the page and in the URL
    sidebar.get_by_role("button", name="Next ➡").click()
    sidebar.get_by_text("Step 2 of 4").wait_for()
    wait_for_app(page)
    deadline = time.time() + 20
    while "step=2" not in page.url and time.time() < deadline:
        time.sleep(0.2)
    q = parse_qs(urlsplit(page.url).query)
    assert q["step"] == ["2"] and q["n1"] == ["2"] and q["activation"] == ["relu"] and q["projector"] == ["1"]
    assert q["lock"] == ["dataset,features"]                    # the teacher's locks stay on the next step
    assert css_of(page, ".st-key-basics-dataset", "pointer-events") == "none"

    # Play: the check in the sidebar follows the run and turns green after 300 epochs
    page.get_by_role("button", name="▶ Play").click()
    sidebar.get_by_text("Every check passed").wait_for(timeout=90_000)
    page.get_by_role("button", name="⏸ Pause").click()
    page.get_by_role("button", name="▶ Play").wait_for()
    wait_for_app(page)
    page.set_viewport_size({"width": 1600, "height": 2300})
    time.sleep(1.5)
    path = screenshot(page, "lesson_projector_mode")
    assert path.stat().st_size > 30_000
