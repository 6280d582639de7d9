"""Page setup and the shared sidebar (seed, device)."""
from __future__ import annotations

from typing import NoReturn

import streamlit as st
import torch

import playground
from playground.ui.live import hold_session_training, warm_workers
from playground.ui.state import PageState

CSS = """
<style>
.block-container {padding-top: 2.2rem;}
div[data-testid="stMetricValue"] {font-size: 1.6rem;}
/* the pages/ folder convention names the home page after its file ("app"): show "Home" instead */
[data-testid="stSidebarNavLink"] span[label="app"] p {font-size: 0;}
[data-testid="stSidebarNavLink"] span[label="app"] p::before {content: "🏠 Home"; font-size: 14px;}
</style>
"""


def setup_page(title: str, icon: str = "🧬", layout: str = "wide") -> None:
    """First call of every page: title, wide layout, one torch thread per process."""
    st.set_page_config(page_title=f"{title} · Sequence DL Playground", page_icon=icon, layout=layout)
    playground.configure_torch_threads()
    freeze_imported_objects()
    hold_session_training()
    warm_workers()          # a real server: start the training worker processes early
    st.markdown(CSS, unsafe_allow_html=True)


_FROZEN_MODULES = 0


def freeze_imported_objects() -> None:
    """Move the objects alive after the imports (torch, plotly, pandas ...: about a million) out of
    the cyclic garbage collector's reach with ``gc.freeze()``, once per new batch of imports.
    Streamlit runs ``gc.collect(2)`` after every script and fragment run; with torch loaded that
    walk took ~150 ms, most of the time of a live-training redraw. Frozen objects are still freed
    by reference counting; only cycles among them would stay."""
    import gc
    import sys

    global _FROZEN_MODULES
    if len(sys.modules) > _FROZEN_MODULES:
        gc.collect()
        gc.freeze()
        _FROZEN_MODULES = len(sys.modules)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def sidebar(state: PageState) -> tuple[int, str]:
    """The shared sidebar: the active lesson (if any), seed and device, classroom mode.
    Returns (seed, device actually used)."""
    from playground.ui.lessons import classroom_controls, inject_css, lesson_panel

    inject_css(state)
    with st.sidebar:
        lesson_panel(state)
        st.markdown("### ⚙️ Run settings")
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=state.key("seed"),
                        help="Fixes the data, the initial weights and the shuffling: same seed, same run.")
        options = ["cpu", "cuda"] if cuda_available() else ["cpu"]
        if state.get("device") not in options:
            st.warning("CUDA was asked for but no GPU is available here; using the CPU.")
            state.set("device", "cpu")
        st.selectbox("Device", options, key=state.key("device"),
                     format_func=lambda d: {"cpu": "CPU", "cuda": "CUDA (GPU)"}[d],
                     help="CUDA appears when PyTorch sees a GPU.")
        device = state.get("device")
        name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
        st.caption(f"Running on **{name}** · torch {torch.__version__}")
        classroom_controls(state)
    for w in state.warnings:
        st.warning(w, icon="🔗")
    return int(state.get("seed")), device


def stop_page(state: PageState) -> NoReturn:
    """Stop drawing the page here (a step needs input first, a model failed to load ...) and
    keep its settings: this session's saved values and the URL (``state.sync()``) first."""
    state.sync()
    st.stop()


def show_error(message: str, hint: str | None = None) -> None:
    """A friendly error box (never a traceback)."""
    st.error(message + (f"\n\n**What to do:** {hint}" if hint else ""), icon="🚫")
