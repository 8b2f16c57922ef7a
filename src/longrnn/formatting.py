"""Numbers as the results pages, reports and the leaderboard print them.

`fmt` gives a number to ``digits`` significant figures ("—" when there is none); `mean_std` and
`mean_std_text` summarise seeds as mean and sample standard deviation (0 for one seed).
"""

from __future__ import annotations

import math
import statistics


def fmt(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures; "—" for None and NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}g}"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation) of the values; (None, None) when there are none."""
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_text(values: list[float]) -> str:
    """'mean ± std' with 3 and 2 significant figures; "—" when there are no values."""
    mean, std = mean_std(values)
    return "—" if mean is None else f"{mean:.3g} ± {std:.2g}"
