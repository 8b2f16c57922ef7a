"""Line colours for plots with one colour per configuration."""

from __future__ import annotations


def colour(k: int, n: int):
    """The k-th of n distinct line colours: matplotlib's 10-colour cycle, or tab20 beyond 10 (its pairs of
    dark and light shades keep neighbouring variants, e.g. with and without warm-up, apart but related)."""
    import matplotlib

    return f"C{k}" if n <= 10 else matplotlib.colormaps["tab20"](k % 20)
