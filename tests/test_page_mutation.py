"""AppTest tests of the mutation-scan views: a typed DNA sequence on the DNA page's Explain tab
and on the Predict page, and the ESM-2 page's mutation-scan tab with the tiny checkpoint."""
from __future__ import annotations

import pytest

from tests.conftest import plotly_specs

DNA_PAGE = "pages/2_DNA_CNN.py"
EXPLAIN = "🔬 Explain a sequence"
TYPED = "ACGTTGCAGGCTAACGTTAGCCGATNACGT"          # 30 bases; the page's model reads 50


def no_exceptions(at):
    assert not at.exception, [e.message for e in at.exception]


def errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def ism_spec(at) -> dict:
    return next(s for s in plotly_specs(at) if "mutagenesis" in s["layout"]["title"]["text"])


def test_dna_page_scans_a_typed_sequence(app_test):
    at = app_test(DNA_PAGE, query={"tab": EXPLAIN, "scan_source": "typed", "scan_seq": TYPED}).run()
    no_exceptions(at)
    spec = ism_spec(at)
    heat = spec["data"][0]
    assert len(heat["z"]) == 4 and len(heat["z"][0]) == 30             # bases × the typed positions only
    assert heat["colorbar"]["title"]["text"] == "Δ logit"
    assert "your sequence" in spec["layout"]["title"]["text"]
    assert any("padding" in c.value for c in at.caption)                # 30 of 50 bases: a note
    assert at.get("image"), "the saliency logo"
    at.radio(key="dna.scan_units").set_value("probability").run()
    no_exceptions(at)
    assert ism_spec(at)["data"][0]["colorbar"]["title"]["text"].startswith("Δ P(")
    at.text_area(key="dna.scan_seq").input("ACGTACGTQACGT").run()
    assert "position 9: 'Q' is not a DNA letter" in errors(at)
    at.button(key="dna.scan_example").click().run()                     # a validation sequence to edit
    no_exceptions(at)
    assert len(ism_spec(at)["data"][0]["z"][0]) == 50
