"""Datasets: toy 2-D/1-D sets, DNA and protein sets, file readers with validation."""
from playground.data.split import SplitData, split_indices

__all__ = ["SplitData", "split_indices"]
