"""Numbers as the results pages, reports and the leaderboard print them.

`fmt` gives a number to ``digits`` significant figures ("—" when there is none); `mean_std` and
`mean_std_text` summarise seeds as mean and sample standard deviation (0 for one seed) over the finite
values, an undefined one (NaN) counted apart; `seeds_text` adds every seed's value, as the results
pages' cells show them.
"""

from __future__ import annotations

import math
import statistics


def fmt(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures; "—" for None and NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}g}"


def finite(values) -> list[float]:
    """The values that are numbers and finite (an undefined score — None, NaN, ±inf — is left out)."""
    return [v for v in values if v is not None and math.isfinite(v)]


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation) of the finite values (0 for one); (None, None) when there are
    none: an undefined score never enters a mean, nor makes the spread look like zero."""
    values = finite(values)
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_text(values: list[float]) -> str:
    """'mean ± std' with 3 and 2 significant figures over the finite values, then how many were undefined
    ("0.5 ± 0.1, 1 undefined"); "undefined" when none is finite; "—" when there are no values."""
    if not values:
        return "—"
    mean, std = mean_std(values)
    undefined = len(values) - len(finite(values))
    if mean is None:
        return "undefined"
    return f"{mean:.3g} ± {std:.2g}" + (f", {undefined} undefined" if undefined else "")


def seeds_text(values: list[float | None], digits: int = 3) -> str:
    """'mean ± std (v1, v2, ...)': the summary over the finite values, then every seed's value ("nan" where
    it is not finite); the summary reads "undefined" when no value is finite; "—" when there are none."""
    if not values:
        return "—"
    defined = finite(values)
    per_seed = ", ".join(fmt(v, digits) if v is not None and math.isfinite(v) else "nan" for v in values)
    return f"{mean_std_text(defined) if defined else 'undefined'} ({per_seed})"


def length(config, summary: dict | None = None):
    """T as every page and command prints it: the task's length setting (``--seq-len``; for copy the delay),
    the T of the run's name. Only a task without that setting shows the input length its summary records
    (``summary.json``'s ``seq_len`` is the number of steps the model reads: for copy T + 20)."""
    if config.task.seq_len is not None:
        return config.task.seq_len
    return (summary or {}).get("seq_len")
