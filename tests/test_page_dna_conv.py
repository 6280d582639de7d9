"""AppTest of the DNA page's "✋ Convolution by hand" tab (playground/ui/conv_view.py)."""
from __future__ import annotations

import math

from tests.conftest import plotly_specs

PAGE = "pages/2_DNA_CNN.py"
TAB = "✋ Convolution by hand"


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def texts(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def no_exceptions(at):
    assert not at.exception, [e.message for e in at.exception]


def test_the_workshop_example_steps_window_by_window(app_test):
    at = app_test(PAGE, query={"tab": TAB}).run()
    no_exceptions(at)
    assert at.session_state["dna.conv_window"] == 1
    m = metrics(at)
    assert m["CCG: sum + bias"] == "1" and m["TTA: sum + bias"] == "0"
    assert "Window 1 of 9" in texts(at)
    at.button(key="dna.conv_next").click().run()
    no_exceptions(at)
    assert at.session_state["dna.conv_window"] == 2
    m = metrics(at)
    assert m["CCG: sum + bias"] == "3" and m["TTA: sum + bias"] == "0"      # window C C G: three matches
    t = texts(at)
    assert "Window 2 of 9 · bases 2-4 · `C C G`" in t
    assert "feature map: `[1, 3, 1, 0, 1, 1, 1, 2, 1]`" in t and "max-pool 2: `[3, 1, 1, 2]`" in t
    assert "flatten: `[3, 1, 1, 2, 0, 1, 2, 0]`" in t
    assert "floor((11 + 2·0 − 3) / 1) + 1 = 9" in at.code[0].value
    assert any("gives the same feature maps" in s.value and s.value.startswith("✓") for s in at.success)
    track = next(s for s in plotly_specs(at) if any(d.get("name") == "feature map" for d in s["data"]))
    maps = [d["z"][0] for d in track["data"] if d.get("name") == "feature map"]
    assert maps[0][:2] == [1, 3] and all(v is None or math.isnan(v) for v in maps[0][2:])  # it grows
    assert dict(at.query_params).get("conv_window") in ("2", ["2"])          # the window is in the link
    at.button(key="dna.conv_back").click().run()
    assert at.session_state["dna.conv_window"] == 1


def test_jaspar_learned_and_grid_filters_on_a_validation_sequence(app_test):
    at = app_test(PAGE, query={"tab": TAB, "conv_source": "validation", "conv_kind1": "jaspar",
                               "conv_kind2": "learned", "conv_padding": "2", "conv_stride": "2",
                               "conv_pool": "3"}).run()
    no_exceptions(at)
    t = texts(at)
    assert "Validation sequence 1 (50 bp)" in t
    assert "filter 2 (learned 2) got 7 zero columns" in t                 # CTCF is 19 wide, the primer's filters 12
    n = (50 + 2 * 2 - 19) // 2 + 1
    assert f"Window 1 of {n}" in t and f"= {n}" in at.code[0].value
    assert "the model's own" in t
    assert any(s.value.startswith("✓") for s in at.success)
    # a typed grid (kernel_size 2), and a consensus with a wrong letter
    at.session_state["dna.conv_kind1"] = "grid"
    at.session_state["dna.conv_grid_k"] = 2
    at.session_state["dna.conv_kind2"] = "consensus"
    at.session_state["dna.conv_cons2"] = "CZ"
    at.run()
    no_exceptions(at)
    assert any("Filter 2, position 2: 'Z'" in e.value for e in at.error)
    at.session_state["dna.conv_cons2"] = "CA"
    at.run()
    no_exceptions(at)
    assert at.session_state["dna.conv_grid1"] == "0,0;1,1;0,0;0,0"        # CCG's grid cut to 2 columns
    assert "grid 1: sum + bias" in metrics(at) and not at.error
    at.session_state["dna.conv_kind2"] = "grid"                           # two grids share one kernel_size
    at.run()
    no_exceptions(at)
    assert "both grids share it" in texts(at) and at.session_state["dna.conv_grid2"] == "0,0;0,0;0,0;1,1"
