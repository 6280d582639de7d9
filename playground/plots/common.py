"""Figures shared by every page: loss curves, metrics, confusion matrix, ROC, parity."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import BaseFigure

TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#ff7f0e"
FONT = dict(size=14)


def column(history: list[dict], key: str) -> np.ndarray:
    """One field of a history as a float array (missing = NaN). Plotly validates numpy arrays
    much faster than lists, which matters for charts redrawn several times a second."""
    return np.array([h.get(key, np.nan) for h in history], dtype=float)


def layout_dict(title: str = "", height: int = 320, uirevision: str | None = "keep", fixed_margins: bool = False,
                **kw) -> dict:
    """The playground's chart layout as a plain dict. ``fixed_margins=True`` turns off plotly's
    automatic axis margins (Streamlit's chart theme turns them on): for charts redrawn while
    training, where measuring tick labels was a third of the browser's time per redraw."""
    layout = dict(title=dict(text=title, x=0.01), height=height, margin=dict(l=50, r=10, t=40, b=40),
                  font=FONT, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
                  uirevision=uirevision, **kw)
    if fixed_margins:
        for axis in ("xaxis", "yaxis"):
            layout[axis] = {**layout.get(axis, {}), "automargin": False}
    return layout


def figure(data: list[dict], layout: dict, ready: bool = False):
    """A figure from plain trace and layout dicts, validated once. Several times faster than
    building it with add_* / update_* calls: it matters for charts redrawn while training.
    ``ready=True``: a :class:`ReadyFigure` instead (no plotly objects at all, for live charts)."""
    if ready:
        return ReadyFigure(data, layout)
    return go.Figure(data=data, layout=layout)


_TEMPLATES: dict = {}


def _template_json() -> dict | None:
    """The default template as plotly JSON (what ``go.Figure`` puts in ``layout.template``;
    Streamlit makes it its own theme), built once per template name."""
    import plotly.io as pio

    name = pio.templates.default
    if not name:
        return None
    if name not in _TEMPLATES:
        _TEMPLATES[name] = pio.templates[name].to_plotly_json()
    return _TEMPLATES[name]


def _typed_array(v: np.ndarray):
    """``to_typed_array_spec(v)`` for a plain numeric numpy array, without plotly's generic
    checks (which ask narwhals whether the array is a Spark, Polars ... frame, every time: a
    quarter of a live chart's JSON). The same dict: int64 narrowed as plotly does, the native
    bytes in base64, ``shape`` for 2-D and up. ``None`` where plotly's own path is needed."""
    import base64

    from _plotly_utils import utils as pu

    if v.size == 0 or not v.dtype.isnative:
        return None
    name = v.dtype.name
    if name in ("int64", "uint64"):
        narrower = ((("int8", pu.int8min, pu.int8max), ("int16", pu.int16min, pu.int16max),
                     ("int32", pu.int32min, pu.int32max)) if name == "int64" else
                    (("uint8", 0, pu.uint8max), ("uint16", 0, pu.uint16max), ("uint32", 0, pu.uint32max)))
        lo, hi = int(v.min()), int(v.max())
        name = next((small for small, a, b in narrower if a <= lo and hi <= b), None)
        if name is None:
            return None
        v = v.astype(name)
    short = pu.plotlyjsShortTypes.get(name)
    if short is None:
        return None
    out = {"dtype": short, "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        out["shape"] = str(v.shape)[1:-1]
    return out


def _as_json(obj):
    """A copy of a trace or layout dict as ``go.Figure(...).to_dict()`` writes it: keys set to
    None left out, numpy arrays as plotly's typed arrays (``convert_to_base64``)."""
    from _plotly_utils.utils import is_homogeneous_array, is_skipped_key, to_typed_array_spec

    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if v is None:
                continue
            if is_skipped_key(k):
                out[k] = v
            elif type(v) is np.ndarray and (fast := _typed_array(v)) is not None:
                out[k] = fast
            elif is_homogeneous_array(v):
                out[k] = to_typed_array_spec(v)
            else:
                out[k] = _as_json(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_as_json(v) if isinstance(v, (dict, list, tuple)) else v for v in obj]
    return obj


_COLORSCALES: dict = {}


def colorscale(name: str) -> list:
    """A named plotly colorscale as the explicit list ``go.Figure`` sends (plotly.js has other
    scales under some of the same names, e.g. "Blues"): for figures built as plain JSON."""
    if name not in _COLORSCALES:
        from _plotly_utils.basevalidators import ColorscaleValidator

        _COLORSCALES[name] = [list(p) for p in ColorscaleValidator("colorscale", "heatmap").validate_coerce(name)]
    return _COLORSCALES[name]


class ReadyFigure(BaseFigure):
    """Plotly JSON written by hand, for ``st.plotly_chart`` on charts redrawn several times a
    second. ``st.plotly_chart`` turns a dict into a validated ``go.Figure`` and a ``go.Figure``
    into a deep copy (``to_dict``): for the Basics page's live charts that was ~2/3 of a redraw's
    CPU. A ``ReadyFigure`` is a ``BaseFigure`` (so Streamlit takes it as already validated) that
    holds only the finished dict: numpy arrays encoded as plotly 7 does (typed arrays) and the
    default template added, so the chart's JSON is the one ``go.Figure(data, layout).to_dict()``
    gives (``tests/test_ready_figure.py``). Only ``to_dict()`` / ``to_plotly_json()`` work: use it
    for finished figures, never to ``update_*`` them. Do not pass anything a validator would
    have to fix (it is not validated)."""

    def __init__(self, data: list[dict], layout: dict):     # noqa: D107 - no BaseFigure.__init__: no objects
        data = [_as_json(t) for t in data]
        layout = _as_json(layout)
        template = _template_json()
        if template is not None and "template" not in layout:
            layout["template"] = template
        object.__setattr__(self, "_spec", {"data": data, "layout": layout})

    def to_dict(self) -> dict:
        return self._spec

    def to_plotly_json(self) -> dict:
        return self._spec

    def __repr__(self) -> str:
        return f"ReadyFigure({len(self._spec['data'])} traces)"


def _layout(fig: go.Figure, title: str = "", height: int = 320, uirevision: str | None = "keep", **kw) -> go.Figure:
    fig.update_layout(**layout_dict(title, height, uirevision, **kw))
    return fig


def loss_figure(history: list[dict], log_y: bool = False, title: str = "Loss", height: int = 320,
                trace=None, ready: bool = False) -> go.Figure:
    """Training and validation loss per epoch. ``trace``: the Trainer's sub-epoch trace (step,
    epoch + fraction, mean training loss), drawn as a thin line, so a long epoch shows progress."""
    ep = column(history, "epoch")
    data = []
    if trace:
        t = np.asarray(trace, dtype=float)
        data.append(dict(type="scatter", x=t[:, 1], y=t[:, 2], mode="lines", name="training (within epochs)",
                         line=dict(width=1, color="rgba(31,119,180,0.35)"), hoverinfo="skip"))
    data += [dict(type="scatter", x=ep, y=column(history, "train_loss"), mode="lines", name="train",
                 line=dict(color=TRAIN_COLOR, width=2.5)),
            dict(type="scatter", x=ep, y=column(history, "val_loss"), mode="lines", name="validation",
                 line=dict(color=TEST_COLOR, width=2.5))]
    return figure(data, layout_dict(title, height, fixed_margins=True,
                                    xaxis=dict(title=dict(text="epoch"), dtick=_epoch_dtick(ep)),
                                    yaxis=dict(title=dict(text="loss"), type="log" if log_y else "linear")),
                  ready=ready)


def _epoch_dtick(ep) -> int | None:
    """Whole-epoch ticks (no 0.5, 1.5 ...) for short runs; plotly's own choice for long ones."""
    last = float(np.nanmax(ep)) if len(ep) else 0.0
    return 1 if last <= 10 else None


def metric_figure(history: list[dict], keys: list[str], title: str = "Metrics", height: int = 320) -> go.Figure:
    ep = column(history, "epoch")
    fig = go.Figure()
    for k in keys:
        fig.add_scatter(x=ep, y=column(history, k), mode="lines", name=k.replace("val_", ""))
    fig.update_xaxes(title="epoch", dtick=_epoch_dtick(ep))
    return _layout(fig, title, height)


def runs_figure(histories: dict, key: str = "val_loss", title: str = "Validation loss", log_y: bool = False,
                height: int = 340) -> go.Figure:
    """One curve per run (e.g. per optimizer) of one history field, on one plot."""
    fig = go.Figure()
    for name, history in histories.items():
        fig.add_scatter(x=column(history, "epoch"), y=column(history, key), mode="lines", name=str(name),
                        line=dict(width=2.5))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=key.replace("_", " "), type="log" if log_y else "linear")
    return _layout(fig, title, height)


def confusion_figure(cm: np.ndarray, class_names: list[str], title: str = "Confusion matrix",
                     ready: bool = False) -> go.Figure:
    cm = np.asarray(cm)
    data = [dict(type="heatmap", z=cm, x=[f"pred {c}" for c in class_names], y=[f"true {c}" for c in class_names],
                 colorscale=colorscale("Blues"), text=cm, texttemplate="%{text}", showscale=False)]
    return figure(data, layout_dict(title, 320, yaxis=dict(autorange="reversed")), ready=ready)


def roc_figure(fpr, tpr, auc: float, title: str = "ROC curve") -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=fpr, y=tpr, mode="lines", name=f"AUROC {auc:.3f}", line=dict(width=2.5))
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dash", color="gray"))
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1])
    return _layout(fig, title, 320)


def parity_figure(y_true, y_pred, r2: float | None = None, title: str = "Pred vs True",
                  ready: bool = False) -> go.Figure:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    lo = float(min(y_true.min(initial=0), y_pred.min(initial=0)))
    hi = float(max(y_true.max(initial=1), y_pred.max(initial=1)))
    data = [dict(type="scatter", x=y_true, y=y_pred, mode="markers", name="test points",
                 marker=dict(size=6, opacity=0.7)),
            dict(type="scatter", x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                 line=dict(dash="dash", color="gray"))]
    if r2 is not None and np.isfinite(r2):
        title = f"{title} (R² = {r2:.3f})"
    return figure(data, layout_dict(title, 320, xaxis=dict(title=dict(text="true")),
                                    yaxis=dict(title=dict(text="predicted"))), ready=ready)


def heatmap_figure(z, x=None, y=None, title: str = "", colorscale: str = "RdBu", zmid: float | None = 0.0,
                   height: int = 360, xtitle: str = "", ytitle: str = "") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, colorscale=colorscale, zmid=zmid))
    fig.update_xaxes(title=xtitle)
    fig.update_yaxes(title=ytitle, autorange="reversed")
    return _layout(fig, title, height)
