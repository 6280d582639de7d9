"""Real browser: on the Language models page, train a masked LM for a few seconds with Play, pause,
click two tokens of a validation sequence to hide them, and see the predicted distribution at each
blank (screenshots at laptop and projector sizes)."""
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import epoch_on_page, screenshot, wait_for_app

pytestmark = pytest.mark.browser
QUERY = dict(n=200, length=30, d_model=32, ff=64, seed=1, early_stop=0, lr=0.003)


def test_train_masked_lm_and_fill_a_blank(server_url, page):
    from playground.setups import lm

    corpus = lm.make_corpus(QUERY)
    tok = lm.make_tokenizer(QUERY, corpus.alphabet)
    toks = tok.tokens(corpus.val[0])
    name, start, end = corpus.val_sites[0][0]
    inside, outside = start + 3, (end + 2 if end + 2 < len(toks) else max(0, start - 3))   # 0-based
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{server_url}/Language_Models?" + "&".join(f"{k}={v}" for k, v in QUERY.items()))
    wait_for_app(page)
    page.get_by_text("Vocabulary: 4 tokens").first.wait_for()
    page.get_by_role("button", name="▶ Play").click()
    page.get_by_role("button", name="⏸ Pause").wait_for()
    deadline = time.time() + 60
    while epoch_on_page(page) < 3 and time.time() < deadline:
        time.sleep(0.5)
    assert epoch_on_page(page) >= 3, "the masked LM trains live while playing"
    page.get_by_role("button", name="⏸ Pause").click()
    page.get_by_role("button", name="▶ Play").wait_for()
    wait_for_app(page)
    # the bits-per-token chart shows the uniform baseline as a reference line
    page.get_by_text("uniform: 2.00 bits").first.wait_for()

    # click two tokens to hide them: one inside the planted motif, one in the background
    for p in (inside, outside):
        page.get_by_role("button", name=f"{toks[p]}{p + 1}", exact=True).first.click()
        wait_for_app(page)
    for p in (inside, outside):
        page.get_by_text(f"blank {toks[p]}{p + 1}", exact=True).first.wait_for()
    page.get_by_text("Top guess right at").first.wait_for()
    assert "of 2 blanks" in page.get_by_text("Top guess right at").first.inner_text()
    want = [f"{min(inside, outside) + 1},{max(inside, outside) + 1}"]               # the blanks are in the link
    deadline = time.time() + 20                  # (the URL is written when the script run ends)
    while parse_qs(urlsplit(page.url).query).get("blanks") != want and time.time() < deadline:
        time.sleep(0.3)
    assert parse_qs(urlsplit(page.url).query).get("blanks") == want
    page.get_by_text("Blanks: click tokens to hide them").first.scroll_into_view_if_needed()
    page.mouse.wheel(0, 250)
    time.sleep(1.0)
    path = screenshot(page, "lm_fill_blank")
    assert path.stat().st_size > 30_000

    # projector size: the same trained model at 1280 × 720 with the sidebar's projector mode
    page.set_viewport_size({"width": 1280, "height": 720})
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("🏫 Classroom").click()
    sidebar.get_by_text("📽️ Projector mode").click()
    page.wait_for_function("() => getComputedStyle(document.documentElement).fontSize === '20px'",
                           timeout=20_000)
    wait_for_app(page)
    page.get_by_text("Top guess right at").first.wait_for()
    page.get_by_text("Top guess right at").first.scroll_into_view_if_needed()
    time.sleep(1.0)
    path = screenshot(page, "lm_fill_blank_projector")
    assert path.stat().st_size > 30_000
