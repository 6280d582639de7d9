"""Live charts as ready plotly JSON (playground.plots.common.ReadyFigure): the Basics page's charts
are sent exactly as the validated go.Figure would send them, without building plotly objects."""
import json

import numpy as np
import pytest

import streamlit.elements.plotly_chart  # noqa: F401 - Streamlit's plotly theme, as in the app
import plotly.io as pio
import plotly.tools

from playground.basics import make_trainer, network_snapshot, output_on_grid
from playground.plots import common as C
from playground.plots import toy
from playground.setups import basics as setup


def as_sent(fig) -> dict:
    """What st.plotly_chart puts in the page for this figure (its JSON, parsed)."""
    d = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    return json.loads(pio.to_json(d, validate=False))


@pytest.fixture(scope="module")
def run():
    tr = make_trainer({"dataset": "circle", "layers": 2, "n1": 4, "n2": 3, "activation": "tanh", "seed": 1})
    tr.run_epochs(2)
    return tr


def _same(build):
    go_fig, ready = build(False), build(True)
    assert isinstance(ready, C.ReadyFigure)
    assert as_sent(ready) == as_sent(go_fig)
    return as_sent(ready)


def test_basics_live_charts_are_sent_as_the_validated_figures(run):
    P, y, yv = run.data.meta, run.data.y_train.numpy(), run.data.y_val.numpy()
    snap = network_snapshot(run, "circle", ["x1", "x2"])
    net = _same(lambda r: toy.network_figure(**snap, ready=r))
    assert net["layout"]["template"] and any(t["type"] == "heatmap" for t in net["data"])
    _, pred = output_on_grid(run, "circle", ["x1", "x2"], 50)
    for hover in (True, False):
        _same(lambda r: toy.output_figure(pred, 50, P["points_train"], y, P["points_val"], yv, "classification",
                                          hover=hover, ready=r))
    for log_y in (False, True):
        loss = _same(lambda r: C.loss_figure(run.history, log_y, ready=r))
    assert "dtick" in loss["layout"]["xaxis"]          # short run: whole-epoch ticks
    cm = _same(lambda r: C.confusion_figure(np.array([[5, 1], [2, 7]]), ["0", "1"], title="t", ready=r))
    assert isinstance(cm["data"][0]["colorscale"], list)  # plotly.py's Blues, not plotly.js's
    _same(lambda r: C.parity_figure(np.linspace(0, 1, 9), np.linspace(0, 1, 9) ** 2, 0.9, ready=r))
    xs = np.linspace(-6, 6, 50)
    _same(lambda r: toy.curve_figure(xs, np.sin(xs), P["points_train"][:, :1], y, None, None, ready=r))
    _same(lambda r: toy.landscape_figure(setup.descent_view({}), ready=r))


def test_ready_figure_leaves_out_none_and_encodes_arrays_like_plotly():
    fig = C.ReadyFigure([dict(type="scatter", x=np.arange(3.0), y=[1, None, 3], name=None)],
                        dict(title=dict(text="t"), uirevision=None))
    spec = fig.to_dict()
    tr = spec["data"][0]
    assert "name" not in tr and "uirevision" not in spec["layout"]
    assert tr["y"] == [1, None, 3]                      # None inside a list stays (a gap)
    assert set(tr["x"]) == {"dtype", "bdata"}           # numpy: plotly 7's typed array
    assert as_sent(fig) == as_sent(C.figure(fig.to_dict()["data"], {"title": {"text": "t"}}))


def test_the_fast_typed_arrays_are_plotlys_own():
    """ReadyFigure encodes plain numpy arrays itself (plotly's generic path asks narwhals about
    every array); each dtype, shape and int64 range gives exactly plotly's typed array."""
    from _plotly_utils.utils import to_typed_array_spec

    rng = np.random.default_rng(0)
    cases = [rng.normal(size=7), rng.normal(size=(3, 4)).astype(np.float32), np.arange(5),
             np.array([0, 300]), np.array([-70000, 5]), np.array([2**40, 1]), np.arange(4, dtype=np.uint64),
             np.array([1, 2], dtype=np.uint8), np.arange(12.0).reshape(3, 4)[:, 1],   # a strided view
             np.arange(6, dtype=np.int16).reshape(2, 3)]
    for v in cases:
        fast = C._typed_array(v)
        want = to_typed_array_spec(v)
        if fast is None:                    # left to plotly (here: int64 beyond int32)
            assert not isinstance(want, dict) or v.dtype == np.int64
            continue
        assert fast == want, (v.dtype, v.shape)
    assert C._typed_array(np.array([], dtype=float)) is None
    assert C._typed_array(np.array([True, False])) is None          # bool: plotly's own path
    assert C._typed_array(np.arange(3.0).astype(">f8")) is None     # not native byte order


def test_a_steady_trainer_freezes_the_history_and_reads_the_rest_live(run):
    """LiveTraining.steady's stand-in (the doctor re-diagnoses at most once a second while playing)."""
    from playground import doctor
    from playground.ui.live import _Steady

    view = _Steady(run)
    assert [f.message for f in doctor.diagnose(view, page="basics")] == \
        [f.message for f in doctor.diagnose(run, page="basics")]
    epoch, n = run.epoch, len(run.history)
    run.run_epochs(1)
    assert (view.epoch, len(view.history)) == (epoch, n)            # as it was
    assert view.model is run.model and view.steps == run.steps       # the rest: live
