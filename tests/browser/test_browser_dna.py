"""Real browser: on the DNA page, press Play on planted CTCF, pause, and see the filters as
logos with the motif recovered; screenshots of the logos and of a sequence's saliency/ISM.
Upload a real-size 251 bp file (3,000 rows): it stays 251 bp, and within 10 s of ▶ Play the
validation curve gains points; screenshots of the Training tab on a laptop screen."""
import time

import pytest

from tests.browser.conftest import SHOTS, epoch_on_page, metric, screenshot, wait_for_app

pytestmark = pytest.mark.browser

# The loss figure's traces, read from the Plotly div itself (what the browser draws).
# _fullData holds the decoded arrays (Plotly may receive them base64-packed in gd.data).
LOSS_TRACES_JS = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const traces = gd._fullData || gd.data || [];
    if (!traces.some(t => t.name === 'validation')) continue;
    const out = {};
    for (const t of traces) {
      const x = Array.from(t.x || []), y = Array.from(t.y || []);
      out[t.name] = {x: x.map(Number), y: y.map(v => (v === null ? null : Number(v)))};
    }
    return out;
  }
  return null;
}"""


def pause_if_playing(page) -> None:
    """Press ⏸ Pause if the run is still playing (early stopping may have ended it already),
    then wait until the page shows ▶ Play and has finished its rerun."""
    pause = page.get_by_role("button", name="⏸ Pause")
    if pause.count():
        try:
            pause.click(timeout=5_000)
        except Exception:  # noqa: BLE001 - the run ended (early stopping) between the check and the click
            pass
    page.get_by_role("button", name="▶ Play").wait_for()
    wait_for_app(page)


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
    pause_if_playing(page)
    # logos of the filters and the JASPAR table (shown when paused)
    page.locator('[data-testid="stImage"] img').first.wait_for()
    page.get_by_text("Best JASPAR matches").wait_for()
    # the tile: label, the match score, and under it the verdict against untrained networks' chance level
    tile = page.locator('[data-testid="stMetric"]', has_text="Motif recovered: CTCF").first.inner_text().split("\n")
    tile = [line.strip() for line in tile if line.strip()]
    recovered = float(tile[1])
    assert recovered >= 0.8
    assert tile[-1].startswith("recovered ·"), tile         # clearly above chance, not "at chance"
    assert float(metric(page, "Validation accuracy")) > 0.85
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


N_UPLOAD, LEN_UPLOAD = 3000, 251


def promoter_like_set(n: int, length: int):
    """A real-size, promoter-like file: n rows of ``length`` bp (the non-TATA promoters' 251),
    half of them GC-rich (as CpG-island promoters are) with a CTCF site, half AT-leaning
    background. A CNN at the page's defaults learns it in an epoch or two (a lone PWM-sampled
    site in 251 bp of uniform background is much harder: the primer preset stays at 0.5)."""
    import pandas as pd

    from playground.data import dna

    pos = dna.planted_motif("CTCF", n=n, length=length, gc=0.56, seed=7).to_frame()
    neg = dna.planted_motif("CTCF", n=n, length=length, gc=0.44, seed=8).to_frame()
    df = pd.concat([pos[pos.label == "CTCF"], neg[neg.label != "CTCF"]]).sample(frac=1, random_state=0)
    assert len(df) == n
    return df[["sequence", "label"]]


def test_upload_251bp_keeps_its_length_and_play_draws_the_validation_curve(server_url, page, tmp_path):
    csv = tmp_path / "promoters_251bp.csv"
    promoter_like_set(N_UPLOAD, LEN_UPLOAD).to_csv(csv, index=False)

    page.set_viewport_size({"width": 1366, "height": 768})      # a laptop screen
    page.goto(f"{server_url}/DNA_CNN?dataset=upload")
    wait_for_app(page)
    page.get_by_text("Upload a CSV/TSV").first.wait_for()
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(csv))
    page.get_by_text(f"{N_UPLOAD} sequences × {LEN_UPLOAD} bp").first.wait_for(timeout=60_000)
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    assert "2000 bp" not in main.inner_text(), "an upload keeps its real length (a limit is not a padding target)"

    page.get_by_role("tab", name="📈 Training").click()
    wait_for_app(page)
    page.get_by_role("button", name=f"Score the {N_UPLOAD // 10:,} test sequences now").wait_for()
    before = page.evaluate(LOSS_TRACES_JS)
    assert before is not None, "the Training tab draws the loss figure (train and validation traces)"
    n_before = len(before["validation"]["x"])
    assert epoch_on_page(page) == 0

    page.get_by_role("button", name="▶ Play").click()
    t0 = time.time()
    got, progress = None, None
    while time.time() - t0 < 10:
        traces = page.evaluate(LOSS_TRACES_JS)
        if progress is None and "mini-batches into epoch" in main.inner_text():
            progress = time.time() - t0
        if traces and len(traces["validation"]["x"]) >= max(2, n_before + 1):
            got = time.time() - t0
            break
        time.sleep(0.2)
    assert got is not None, (f"within 10 s of ▶ Play the validation curve gains points (it had {n_before}; "
                             f"progress within an epoch seen after {progress} s)")
    val = traces["validation"]
    assert val["x"] == list(range(int(val["x"][0]), int(val["x"][0]) + len(val["x"]))), "one point per epoch"
    assert all(v is not None and v == v and 0 < v < 5 for v in val["y"]), val["y"]   # finite losses
    assert len(traces["train"]["x"]) == len(val["x"])
    assert val["x"][-1] >= 1 and epoch_on_page(page) >= 1

    pause_if_playing(page)
    assert float(metric(page, "Validation accuracy")) > 0.7, "the curve is a network learning the file"
    line = page.get_by_text("epochs done").first.inner_text()
    assert f"{epoch_on_page(page):,} epochs done" in line, line
    after = page.evaluate(LOSS_TRACES_JS)
    assert after["validation"]["x"][-1] == epoch_on_page(page), "the curve ends at the epoch the page shows"
    print(f"\nvalidation curve: {len(val['x'])} points {got:.1f} s after Play (progress within an epoch "
          f"after {progress and round(progress, 1)} s); paused: {line}")

    # screenshots: what a laptop screen shows without scrolling, and the whole page at laptop width
    page.locator('[data-testid="stMain"] .js-plotly-plot').first.scroll_into_view_if_needed()
    time.sleep(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dna_upload_training_laptop_view.png"))
    page.set_viewport_size({"width": 1366, "height": 2100})
    time.sleep(1.5)
    path = screenshot(page, "dna_upload_training")
    assert path.stat().st_size > 30_000
