"""Figures of the Neural Network Basics page: the output view, the network diagram and
the loss landscape."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from playground.data.toy import RANGE
from playground.plots.common import colorscale, figure, layout_dict

# TF Playground's colours: orange for negative / class 0, blue for positive / class 1.
ORANGE = "#f59322"
BLUE = "#0877bd"
DIVERGING = [[0.0, ORANGE], [0.5, "#e8eaeb"], [1.0, BLUE]]


def _hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i: i + 2], 16) for i in (1, 3, 5)], dtype=float)


_STOPS = np.stack([_hex_rgb(ORANGE), _hex_rgb(DIVERGING[1][1]), _hex_rgb(BLUE)])


def diverging_rgb(values, vmin: float, vmax: float) -> np.ndarray:
    """TF Playground's orange - grey - blue colour scale: float RGB of shape (..., 3)."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=(vmin + vmax) / 2)
    t = np.clip((v - vmin) / (vmax - vmin), 0, 1)[..., None]
    low = _STOPS[0] + (_STOPS[1] - _STOPS[0]) * np.clip(t * 2, 0, 1)
    high = _STOPS[1] + (_STOPS[2] - _STOPS[1]) * np.clip(t * 2 - 1, 0, 1)
    return np.where(t < 0.5, low, high)


OUTPUT_PX = 600          # the output view's image (shown at ~230 px here: sharp on big screens too)


_OVERLAYS: "dict[bytes, object]" = {}       # the data points' layer, per data set (few, small)


def _points_overlay(points_train, y_train, points_test, y_test, problem: str, px: int):
    """The data points drawn once on a transparent layer (RGBA), cached per data set: the points do
    not move while a model trains, only the output under them changes."""
    import hashlib

    from PIL import Image, ImageDraw

    arrays = [points_train, y_train] + ([points_test, y_test] if points_test is not None else [])
    key = hashlib.sha1(b"|".join(np.ascontiguousarray(a, dtype=float).tobytes() for a in arrays)
                       + f"{problem}|{px}|{points_test is None}".encode()).digest()
    hit = _OVERLAYS.get(key)
    if hit is not None:
        return hit
    layer = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    r = 4.5 * px / 230                    # a plotly marker of size 9 where the plot is ~230 px wide

    def pixels(P):   # bottom row first (see output_image)
        P = np.asarray(P, dtype=float)
        return (P[:, 0] + RANGE) / (2 * RANGE) * px, (P[:, 1] + RANGE) / (2 * RANGE) * px

    def colors(yv):
        yv = np.asarray(yv, dtype=float).reshape(-1)
        rgb = diverging_rgb((yv >= 0.5).astype(float), 0.0, 1.0) if problem == "classification" \
            else diverging_rgb(yv, -1.0, 1.0)
        return [tuple(int(v) for v in c) for c in rgb]

    if points_test is not None and len(points_test):
        for x, y, c in zip(*pixels(points_test), colors(y_test)):
            draw.ellipse([x - r, y - r, x + r, y + r], outline=c, width=max(1, round(r / 4)))
            draw.ellipse([x - r / 4, y - r / 4, x + r / 4, y + r / 4], fill=c)
    for x, y, c in zip(*pixels(points_train), colors(y_train)):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=c, outline=(255, 255, 255), width=max(1, round(r / 4)))
    if len(_OVERLAYS) > 32:
        _OVERLAYS.clear()
    _OVERLAYS[key] = layer
    return layer


def output_image(z: np.ndarray, points_train, y_train, points_test, y_test, zmin: float, zmax: float,
                 problem: str, px: int = OUTPUT_PX, opacity: float = 0.85) -> bytes:
    """The output view as one JPEG image, bottom row first (plotly draws an image trace upwards
    from ``y0`` on a y axis that is not reversed): the model's output on the grid (z[0] = lowest
    x2, as in plotly's heatmap), smoothed, in TF Playground's colours, with the data on top
    (train: filled, white rim; test: a ring with a dot). One image costs the browser a fraction
    of a heatmap plus hundreds of SVG markers to redraw, which matters several times a second;
    the points' layer is drawn once per data set and a JPEG is encoded in about a millisecond."""
    import io

    img = _output_rgb(z, points_train, y_train, points_test, y_test, zmin, zmax, problem, px, opacity)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _output_rgb(z, points_train, y_train, points_test, y_test, zmin, zmax, problem, px, opacity=0.85):
    """``output_image`` before encoding: a PIL RGB image."""
    from PIL import Image

    rgb = diverging_rgb(z, zmin, zmax) * opacity + 255 * (1 - opacity)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB").resize((px, px), Image.BILINEAR).convert("RGBA")
    img = Image.alpha_composite(img, _points_overlay(points_train, y_train, points_test, y_test, problem, px))
    return img.convert("RGB")


def _output_levels(grid_pred: np.ndarray, resolution: int, problem: str, discretize: bool):
    """The output on the grid as the view colours it, and its colour range: class 1's probability
    (0/1 when discretized) or the regression value (its sign when discretized)."""
    z = grid_pred.reshape(resolution, resolution)
    if problem == "classification":
        return ((z >= 0.5).astype(float) if discretize else z), 0.0, 1.0
    return (np.sign(z) if discretize else z), -1.0, 1.0


def _colour_key(problem: str) -> str:
    """What the output view's colours mean (its title's note)."""
    return "blue = class 1, orange = class 0" if problem == "classification" else "blue = positive, orange = negative"


_FRAMES: "dict[tuple, object]" = {}         # the picture's axes, title and legend, per look (few, small)
PICTURE_PX = 480         # the output square of output_picture (a redraw's picture: cheaper to encode and send)


def _picture_frame(title: str, key: str, has_test: bool, px: int):
    """The static part of ``output_picture``: white canvas, title, axis ticks and titles, legend,
    the square's position. Cached: only the square changes while a model trains."""
    k = (title, key, has_test, px)
    hit = _FRAMES.get(k)
    if hit is not None:
        return hit
    from PIL import Image, ImageDraw, ImageFont

    # shown at about half its size in the page's column: fonts as plotly's, doubled
    big, small = ImageFont.load_default(size=max(14, px // 15)), ImageFont.load_default(size=max(12, px // 20))
    left, top, bottom = px // 7, px // 8, px // 5
    w, h = left + px + px // 40, top + px + bottom
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((left, top // 2), title, font=big, fill="#31333f", anchor="lm", stroke_width=1, stroke_fill="#31333f")
    d.text((left + d.textlength(title, font=big) + 12, top // 2), f"({key})", font=small, fill="#31333f",
           anchor="lm")
    d.rectangle((left - 1, top - 1, left + px, top + px), outline="#bfc5d3")
    for v in range(-int(RANGE), int(RANGE) + 1, max(1, int(RANGE) // 2) if RANGE >= 4 else 1):
        x = left + (v + RANGE) / (2 * RANGE) * px
        y = top + (RANGE - v) / (2 * RANGE) * px
        d.line((x, top + px, x, top + px + 4), fill="#31333f")
        d.text((x, top + px + 6), str(v), font=small, fill="#31333f", anchor="mt")
        d.line((left - 5, y, left - 1, y), fill="#31333f")
        d.text((left - 7, y), str(v), font=small, fill="#31333f", anchor="rm")
    d.text((left + px / 2, top + px + px // 11), "x1", font=small, fill="#31333f", anchor="mt")
    d.text((px // 40, top + px / 2), "x2", font=small, fill="#31333f", anchor="lm")
    ly, r = top + px + bottom * 4 // 5, max(5, px // 60)
    items = [("train", False)] + ([("validation", True)] if has_test else [])
    widths = [2 * r + 6 + d.textlength(n, font=small) for n, _ in items]
    x = left + (px - sum(widths) - 20 * (len(items) - 1)) / 2
    for (name, hollow), wd in zip(items, widths):
        d.ellipse((x, ly - r, x + 2 * r, ly + r), fill=None if hollow else "#9aa0a6",
                  outline="black" if hollow else "white", width=1)
        if hollow:
            d.ellipse((x + r - 1, ly - 1, x + r + 1, ly + 1), fill="black")
        d.text((x + 2 * r + 6, ly), name, font=small, fill="#31333f", anchor="lm")
        x += wd + 20
    hit = _FRAMES[k] = (img, (left, top))
    return hit


def output_picture(grid_pred: np.ndarray, resolution: int, points_train: np.ndarray, y_train: np.ndarray,
                   points_test: np.ndarray | None, y_test: np.ndarray | None, problem: str,
                   discretize: bool = False, title: str = "Output", px: int = PICTURE_PX) -> bytes:
    """The output view of ``output_figure`` as one JPEG picture, axes and legend drawn in: what the
    live view shows while training plays. A browser swaps a picture for a fraction of what Plotly
    costs it to redraw a figure (Chromium on the 2-core machine: ~60 ms of its main thread per
    redraw), and nothing in it can be hovered while it changes several times a second anyway."""
    import io

    z, zmin, zmax = _output_levels(grid_pred, resolution, problem, discretize)
    key = _colour_key(problem)
    has_test = points_test is not None and len(points_test) > 0
    frame, (left, top) = _picture_frame(title, key, has_test, px)
    from PIL import Image

    square = _output_rgb(z, points_train, y_train, points_test, y_test, zmin, zmax, problem, px)
    square = square.transpose(Image.Transpose.FLIP_TOP_BOTTOM)   # plotly's image trace ran upwards; a picture runs down
    img = frame.copy()
    img.paste(square, (left, top))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def output_figure(grid_pred: np.ndarray, resolution: int, points_train: np.ndarray, y_train: np.ndarray,
                  points_test: np.ndarray | None, y_test: np.ndarray | None, problem: str,
                  discretize: bool = False, title: str = "Output", hover: bool = True, ready: bool = False) -> go.Figure:
    """2-D: the model's output over the input square with the data on top, drawn as one image
    (:func:`output_image`) on plotly axes. ``hover=True`` adds invisible markers, so each point
    shows its coordinates and label on hover (left out while training plays)."""
    import base64

    z, zmin, zmax = _output_levels(grid_pred, resolution, problem, discretize)
    jpeg = output_image(z, points_train, y_train, points_test, y_test, zmin, zmax, problem)
    d = 2 * RANGE / OUTPUT_PX
    data = [dict(type="image", source="data:image/jpeg;base64," + base64.b64encode(jpeg).decode(),
                 x0=-RANGE + d / 2, dx=d, y0=-RANGE + d / 2, dy=d, hoverinfo="skip", name="output")]
    has_test = points_test is not None and len(points_test) > 0
    for name, hollow in (("train", False), ("validation", True)):
        if name == "validation" and not has_test:
            continue
        marker = dict(size=9, color="#9aa0a6", line=dict(color="black" if hollow else "white", width=1),
                      symbol="circle-open-dot" if hollow else "circle")
        data.append(dict(type="scatter", x=[None], y=[None], mode="markers", name=name, marker=marker,
                         hoverinfo="skip"))
    if hover:
        for P, yv, name in ((points_train, y_train, "train"), (points_test, y_test, "validation")):
            if P is None or len(P) == 0:
                continue
            P = np.asarray(P)
            data.append(dict(type="scatter", x=P[:, 0], y=P[:, 1], mode="markers", name=name, showlegend=False,
                             marker=dict(size=9, opacity=0), customdata=np.round(np.asarray(yv, float).reshape(-1), 3),
                             hovertemplate="x1=%{x:.2f}<br>x2=%{y:.2f}<br>label %{customdata}<extra>" + name
                                           + "</extra>"))
    key = _colour_key(problem)
    layout = layout_dict(f"{title} <span style='font-size:12px'>({key})</span>", 440, fixed_margins=True,
                         xaxis=dict(range=[-RANGE, RANGE], title=dict(text="x1"), constrain="domain", showgrid=False,
                                    zeroline=False),
                         yaxis=dict(range=[-RANGE, RANGE], autorange=False, title=dict(text="x2"), scaleanchor="x",
                                    scaleratio=1, constrain="domain", showgrid=False, zeroline=False))
    layout.update(margin=dict(l=40, r=10, t=40, b=35),
                  legend=dict(orientation="h", y=-0.12, x=0.5, xanchor="center", yanchor="top"))
    return figure(data, layout, ready=ready)


def curve_figure(x_grid: np.ndarray, pred: np.ndarray, x_train, y_train, x_test=None, y_test=None,
                 title: str = "Data and fitted curve", ready: bool = False) -> go.Figure:
    """1-D regression: the data and the network's curve."""
    data = [dict(type="scatter", x=np.asarray(x_train).reshape(-1), y=y_train, mode="markers", name="train",
                 marker=dict(color=BLUE, size=6, opacity=0.7))]
    if x_test is not None and len(x_test):
        data.append(dict(type="scatter", x=np.asarray(x_test).reshape(-1), y=y_test, mode="markers", name="validation",
                         marker=dict(color=ORANGE, size=6, symbol="circle-open", line=dict(width=1.5))))
    data.append(dict(type="scatter", x=x_grid.reshape(-1), y=np.round(pred, 4), mode="lines", name="network",
                     line=dict(color="black", width=3)))
    return figure(data, layout_dict(title, 440, fixed_margins=True,
                                    xaxis=dict(title=dict(text="x1"), range=[-RANGE, RANGE]),
                                    yaxis=dict(title=dict(text="y"))), ready=ready)


def network_figure(layer_names: list[list[str]], tiles: list[np.ndarray], weights: list[np.ndarray],
                   biases: list[np.ndarray], tile: int = 12, ready: bool = False) -> go.Figure:
    """The network as TF Playground draws it.

    layer_names: names of the nodes in each column (features, hidden layers, output).
    tiles: per column, an array (n_nodes, tile, tile) of what each node outputs over the input
      square (values in about [-1, 1]).
    weights: per link layer, the (out, in) weight matrix; biases per hidden/output layer.
    Links are blue for positive and orange for negative weights, thicker for larger |w|;
    hover a link's midpoint or a node to read its value.
    """
    n_cols = len(layer_names)
    gap_x, gap_y = tile * 2.4, tile * 0.45
    max_nodes = max(len(c) for c in layer_names)
    height_units = max_nodes * (tile + gap_y)
    centers = []
    for ci, names in enumerate(layer_names):
        x0 = ci * (tile + gap_x)
        total = len(names) * (tile + gap_y)
        y_off = (height_units - total) / 2
        centers.append([(x0 + tile / 2, y_off + i * (tile + gap_y) + tile / 2) for i in range(len(names))])

    data: list[dict] = []
    # links, bucketed by sign and width so a big network stays a handful of traces
    all_w = np.concatenate([np.abs(w).ravel() for w in weights]) if weights else np.array([1.0])
    all_w = all_w[np.isfinite(all_w)]
    wmax = float(all_w.max()) if all_w.size and all_w.max() > 0 else 1.0
    buckets: dict[tuple[bool, int], tuple[list, list]] = {}
    mid_x, mid_y, mid_txt = [], [], []
    for li, W in enumerate(weights):
        src, dst = centers[li], centers[li + 1]
        for j in range(W.shape[0]):
            for i in range(W.shape[1]):
                w = float(W[j, i])
                width_level = int(np.clip(np.ceil(abs(w) / wmax * 5), 1, 5)) if np.isfinite(w) else 1
                xs, ys = buckets.setdefault((w >= 0, width_level), ([], []))
                x1, y1 = src[i][0] + tile / 2, src[i][1]
                x2, y2 = dst[j][0] - tile / 2, dst[j][1]
                xs += [x1, x2, np.nan]
                ys += [y1, y2, np.nan]
                mid_x.append((x1 + x2) / 2)
                mid_y.append((y1 + y2) / 2)
                mid_txt.append(f"{layer_names[li][i]} → {layer_names[li + 1][j]}<br>w = {w:.3f}")
    for (pos, level), (xs, ys) in sorted(buckets.items()):
        data.append(dict(type="scatter", x=np.array(xs), y=np.array(ys), mode="lines", hoverinfo="skip",
                         showlegend=False, line=dict(color=BLUE if pos else ORANGE, width=0.6 + level * 0.9),
                         opacity=0.75))
    data.append(dict(type="scatter", x=np.array(mid_x), y=np.array(mid_y), mode="markers",
                     marker=dict(size=8, opacity=0), hovertext=mid_txt, hoverinfo="text", showlegend=False,
                     name="weights"))
    # node maps: one heatmap per column (NaN between nodes)
    node_x, node_y, node_txt = [], [], []
    for ci, names in enumerate(layer_names):
        T = tiles[ci]
        n = len(names)
        if n == 0:
            continue
        rows = int(round(height_units))
        z = np.full((rows, tile), np.nan)
        for ni in range(n):
            cy = centers[ci][ni][1]
            r0 = int(round(cy - tile / 2))
            z[max(0, r0): r0 + tile] = np.round(T[ni][: rows - max(0, r0)], 2)
            b_txt = ""
            if ci > 0 and ci - 1 < len(biases):
                b_txt = f"<br>bias = {float(biases[ci - 1][ni]):.3f}"
            node_x.append(centers[ci][ni][0])
            node_y.append(cy)
            node_txt.append(names[ni] + b_txt)
        x0 = ci * (tile + gap_x)
        data.append(dict(type="heatmap", z=z, x0=x0 + 0.5, dx=1, y0=0.5, dy=1, colorscale=DIVERGING, zmin=-1, zmax=1,
                         showscale=False, hoverinfo="skip"))
    data.append(dict(type="scatter", x=np.array(node_x), y=np.array(node_y), mode="markers",
                     marker=dict(size=tile * 2, opacity=0, symbol="square"), hovertext=node_txt, hoverinfo="text",
                     showlegend=False, name="nodes"))
    annotations = []
    for ci, names in enumerate(layer_names):
        label = "inputs" if ci == 0 else ("output" if ci == n_cols - 1 else f"layer {ci}")
        annotations.append(dict(x=ci * (tile + gap_x) + tile / 2, y=-tile * 0.6, text=label, showarrow=False,
                                font=dict(size=13)))
    for name, (cx, cy) in zip(layer_names[0], centers[0]):
        annotations.append(dict(x=cx - tile / 2 - 1, y=cy, text=name, showarrow=False, xanchor="right",
                                font=dict(size=13)))
    layout = layout_dict("Network", max(440, min(760, 60 + max_nodes * 46)), annotations=annotations,
                         xaxis=dict(visible=False, range=[-tile * 2.6, (n_cols - 1) * (tile + gap_x) + tile * 1.3]),
                         yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", scaleratio=1))
    return figure(data, layout, ready=ready)


def landscape_figure(path, title: str = "Loss landscape of y = w·x + b", ready: bool = False) -> go.Figure:
    """Contours of the training loss over (w, b) with the optimizer's path."""
    inside = (np.abs(path.w - path.w_best) < 50) & (np.abs(path.b - path.b_best) < 50)
    data = [dict(type="contour", x=path.w_grid, y=path.b_grid, z=np.log10(path.loss_grid + 1e-9),
                 colorscale=colorscale("Viridis"), contours=dict(showlabels=False), ncontours=25,
                 colorbar=dict(title=dict(text="log₁₀ loss"), thickness=12), hoverinfo="skip"),
            dict(type="scatter", x=path.w[inside], y=path.b[inside], mode="lines+markers", name="optimizer path",
                 line=dict(color="white", width=2), marker=dict(size=5, color="#ff4136"),
                 customdata=np.stack([np.arange(len(path.w))[inside], path.loss[inside]], 1),
                 hovertemplate="step %{customdata[0]}<br>w=%{x:.3f} b=%{y:.3f}<br>loss=%{customdata[1]:.4g}"
                               "<extra></extra>"),
            dict(type="scatter", x=[path.w_best], y=[path.b_best], mode="markers", name="minimum",
                 marker=dict(symbol="star", size=16, color="gold", line=dict(color="black", width=1)))]
    layout = layout_dict(title, 420, uirevision=None,
                         xaxis=dict(title=dict(text="w (weight)"), range=[float(path.w_grid[0]), float(path.w_grid[-1])]),
                         yaxis=dict(title=dict(text="b (bias)"), range=[float(path.b_grid[0]), float(path.b_grid[-1])]))
    return figure(data, layout, ready=ready)
