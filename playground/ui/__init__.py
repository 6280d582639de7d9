"""The only place besides pages/ that imports streamlit: sidebar, live training controls,
state <-> URL query parameters."""
from playground.ui.layout import setup_page, show_error, sidebar, stop_page
from playground.ui.live import LiveTraining
from playground.ui.state import PageState, Param

__all__ = ["setup_page", "sidebar", "show_error", "stop_page", "LiveTraining", "PageState", "Param"]
