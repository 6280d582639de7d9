"""AppTests of the DNA page's "🧪 Designed filters" tab and of the chance levels beside every
motif score (the status row's "Motif recovered", the filter tab's tiles and JASPAR table)."""
from __future__ import annotations

import numpy as np

from tests.conftest import plotly_specs

PAGE = "pages/2_DNA_CNN.py"
DESIGNED = "🧪 Designed filters"
FILTERS = "🧩 Filters → logos"


def no_exceptions(at):
    assert not at.exception, [e.message for e in at.exception]


def metric(at, label: str):
    return next(m for m in at.metric if m.label == label)


def test_designed_tab_compares_three_arms_and_puts_the_filter_into_the_model(app_test):
    at = app_test(PAGE, query={"tab": DESIGNED, "n": "500", "design_epochs": "4"}).run()
    no_exceptions(at)
    fig = next(s for s in plotly_specs(at) if "log-odds" in s["layout"]["title"]["text"])
    assert "CTCF" in fig["layout"]["title"]["text"] and len(fig["data"][0]["z"]) == 4
    assert len(fig["data"][0]["z"][0]) == 12                          # the primer CNN's kernel size
    assert any("19 columns wide" in c.value for c in at.caption)      # cropped, and the tab says so

    at.button(key="dna.design_run").click().run()
    no_exceptions(at)
    chance = float(metric(at, "Chance (majority class)").value)
    designed = float(metric(at, "Designed only").value)
    assert 0 <= float(metric(at, "Learned only").value) <= 1 and 0 <= float(metric(at, "Designed + learned").value) <= 1
    assert any("Validation accuracy of each arm" in c.value for c in at.caption)
    assert designed > chance + 0.2, (designed, chance)                # the motif alone is worth a lot
    table = at.dataframe[0].value
    assert list(table["arm"]) == ["Designed only", "Learned only", "Designed + learned"]
    assert list(table["designed filters"]) == [1, 0, 1] and list(table["learned filters"]) == [0, 32, 31]

    at.session_state["dna.design_filter"] = 3
    at.run()
    at.button(key="dna.design_put").click().run()
    no_exceptions(at)
    assert any("Filter 3 is now" in s.value and "(frozen)" in s.value for s in at.success)
    tr = at.session_state["dna._trainer"]
    from playground import designed as DF

    assert DF.frozen_filters(tr.model) == [2]
    want = DF.from_motif("MA0139.1", 12).weights
    assert np.allclose(tr.model.first_conv.weight[2].detach().numpy(), want, atol=1e-6)
    at.button(key="dna.step").click().run()                           # train an epoch: it stays put
    no_exceptions(at)
    assert np.allclose(tr.model.first_conv.weight[2].detach().numpy(), want, atol=1e-6)


def test_a_bad_grid_is_a_friendly_error_naming_the_row(app_test):
    at = app_test(PAGE, query={"tab": DESIGNED, "n": "200", "design_source": "grid",
                               "design_grid": "1,0,0;0,x,0;0,0,1;0,0,0"}).run()
    no_exceptions(at)
    assert any("row 2" in e.value and "'x' is not a number" in e.value for e in at.error)


def test_motif_scores_carry_their_chance_level(app_test):
    at = app_test(PAGE, query={"tab": FILTERS, "n_logos": "4"}).run()
    no_exceptions(at)
    top = metric(at, "Motif recovered")
    assert "at chance" in top.delta, top.delta                       # the untrained network: ~0.77, p ~ 0.5
    tile = metric(at, "Motif recovered: CTCF (MA0139.1)")
    assert "at chance" in tile.delta and "chance ≤" in tile.delta
    table = at.dataframe[0].value
    assert {"chance r (95 %)", "p (hit 1)", "hit 1 is"} <= set(table.columns)
    for _ in range(3):
        at.button(key="dna.step").click().run()
    no_exceptions(at)
    tile = metric(at, "Motif recovered: CTCF (MA0139.1)")
    assert float(tile.value) > 0.9 and tile.delta.startswith("recovered"), tile.delta
    assert "recovered" in metric(at, "Motif recovered").delta
    best = at.dataframe[0].value.iloc[0]
    assert best["hit 1"].startswith("CTCF") and best["hit 1 is"] == "above chance"
    rec = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"] == "Motif recovered per epoch")
    assert any("chance" in a["text"] for a in rec["layout"].get("annotations", []))
