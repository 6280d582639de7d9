"""Real browser: on the sequence-models page, train a Transformer on the motif-grammar DNA set with
Play, pause, and see every layer's and head's attention as heatmaps (screenshots)."""
import re
import time

import pytest

from tests.browser.conftest import epoch_on_page, metric, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def first_positive(n: int, length: int, seed: int) -> int:
    """A validation sequence that carries the motif pair (so both motifs get outlined)."""
    from playground.data import protein as P

    ps = P.builtin_set("dna_grammar", n, length, seed)
    data = P.to_split(ps, "random", 0.8, seed)
    return next(i for i, j in enumerate(data.meta["test_idx"]) if ps.y[j] == 1)


def test_train_transformer_and_see_attention(server_url, page):
    idx = first_positive(400, 40, 2)
    page.goto(f"{server_url}/Sequence_Models?dataset=dna_grammar&n=400&length=40&family=transformer&t_d=16"
              f"&t_heads=2&t_layers=2&t_ff=32&lr=0.003&seed=2&early_stop=0&seq_idx={idx}")   # plays until paused
    wait_for_app(page)
    page.get_by_role("button", name="▶ Play").click()
    page.get_by_role("button", name="⏸ Pause").wait_for()
    deadline = time.time() + 90
    while epoch_on_page(page) < 3 and time.time() < deadline:
        time.sleep(0.5)
    assert epoch_on_page(page) >= 3, "training advances live while playing"
    page.get_by_role("button", name="⏸ Pause").click()
    page.get_by_role("button", name="▶ Play").wait_for()
    wait_for_app(page)
    assert float(metric(page, "Accuracy")) > 0.0
    time.sleep(1)
    screenshot(page, "seq_models_training")
    # the attention grid: 2 layers x (2 heads + average) heatmaps, bases on the axes
    page.get_by_text("layer 2 · average").first.wait_for()
    page.get_by_text("Planted: ").first.wait_for()
    assert "GATA1" in page.get_by_text("Planted: ").first.inner_text()
    grid = page.locator(".js-plotly-plot").nth(2)
    grid.scroll_into_view_if_needed()
    assert page.locator(".js-plotly-plot").count() >= 4
    ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
    assert any(re.fullmatch(r"[ACGT]\d+", t) for t in ticks), ticks[:10]
    page.set_viewport_size({"width": 1400, "height": 2300})
    time.sleep(1.5)
    path = screenshot(page, "seq_models_attention")
    assert path.stat().st_size > 30_000

    # the step-by-step walkthrough with the trained weights
    page.get_by_role("tab", name="🧮 How attention is computed").click()
    wait_for_app(page)
    page.get_by_text("Check: recomputed by hand").wait_for()
    time.sleep(1)
    path = screenshot(page, "seq_models_walkthrough")
    assert path.stat().st_size > 20_000
