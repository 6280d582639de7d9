"""Pure plotting functions: data in, plotly Figure out (logos: matplotlib via logomaker).

common.py holds the figures every page uses; each page family has its own module."""
from playground.plots.common import (confusion_figure, heatmap_figure, loss_figure, metric_figure,
                                     parity_figure, roc_figure, runs_figure)

__all__ = ["loss_figure", "metric_figure", "confusion_figure", "roc_figure", "parity_figure", "heatmap_figure", "runs_figure"]
