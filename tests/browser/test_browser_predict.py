"""Real browser: upload a saved CNN bundle on the Predict page, paste FASTA, predict, download the
CSV, look at one sequence's saliency; screenshot."""
import csv
import io
import time

import pytest

from playground import TrainConfig, Trainer
from playground.bundle import bundle_from_trainer
from playground.data import dna
from playground.models import build_model
from playground.models.cnn import primer_cnn
from tests.browser.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def test_upload_bundle_paste_fasta_predict_and_download(server_url, page, tmp_path):
    ds = dna.planted_motif("CTCF", n=600, length=50, seed=2)
    spec = primer_cnn(50, 1)
    tr = Trainer(build_model(spec, 2), ds.split(0.75, 2), TrainConfig(optimizer="adam", lr=0.01, batch_size=32, seed=2))
    tr.run_epochs(6)
    bundle_path = tmp_path / "ctcf_primer_cnn.pt"
    bundle_from_trainer(tr, spec, page="dna", dataset="planted CTCF (MA0139.1)").save(bundle_path)

    page.goto(f"{server_url}/Predict?source=upload")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(bundle_path))
    page.get_by_text("What this model reads").wait_for()
    wait_for_app(page)
    fasta = "".join(f">seq{i + 1}_{'CTCF' if ds.y[i] else 'background'}\n{s}\n" for i, s in enumerate(ds.seqs[:40]))
    box = page.get_by_label("Sequences (FASTA or one per line)")
    box.fill(fasta)
    box.press("Control+Enter")
    wait_for_app(page)
    page.get_by_role("button", name="🔮 Predict").click()
    page.get_by_text("3 · Predictions").wait_for()
    wait_for_app(page)
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    page.get_by_text("In-silico mutagenesis of seq1").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 2
    # the CSV download holds every prediction with its full sequence
    with page.expect_download() as dl:
        page.get_by_role("button", name="⬇️ Predictions (CSV)").click()
    path = dl.value.path()
    rows = list(csv.DictReader(io.StringIO(open(path).read())))
    assert len(rows) == 40 and rows[0]["sequence"] == ds.seqs[0]
    called = [float(r["P(CTCF)"]) >= 0.5 for r in rows]
    truth = [bool(v) for v in ds.y[:40]]
    assert sum(a == b for a, b in zip(called, truth)) >= 30        # a trained model: mostly right
    # click the fifth row of the table: its saliency and mutagenesis are drawn
    grid = page.locator('[data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 35 * 5 + 17)
    wait_for_app(page)
    page.get_by_text("In-silico mutagenesis of seq5").first.wait_for()
    page.set_viewport_size({"width": 1400, "height": 2800})
    time.sleep(1.5)
    shot = screenshot(page, "predict_cnn_bundle")
    assert shot.stat().st_size > 30_000
