"""Length generalisation: a run's score at lengths other than the one it trained at.

`longrnn eval RUN... --seq-len 100 1000 10000` scores every run at each length and gives its results to
`length_table` (Markdown: a row per run, a column per length, the memoryless baseline's row last) and
`length_plot` (the main metric against the length, log-scaled, a line per run and the baseline dashed).
A result is the dict `longrnn eval` prints: ``run``, ``seq_len``, ``baseline`` and a dict per split.
"""

from __future__ import annotations

from pathlib import Path

from longrnn.errors import require_extra
from longrnn.reporting.formatting import fmt


def _grid(results: list[dict], split: str, metric: str):
    lengths = sorted({r["seq_len"] for r in results})
    runs = list(dict.fromkeys(r["run"] for r in results))
    value = {(r["run"], r["seq_len"]): r[split].get(metric) for r in results if split in r}
    baseline = {r["seq_len"]: r["baseline"].get(metric) for r in results}
    return lengths, runs, value, baseline


def length_table(results: list[dict], split: str, metric: str) -> str:
    """Markdown: ``metric`` on ``split`` per run (rows) and length (columns), and the baseline's row."""
    lengths, runs, value, baseline = _grid(results, split, metric)
    lines = [f"{metric} on the {split} set by sequence length (seq_len)\n",
             "| run | " + " | ".join(f"T={n:,}" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
    for run in runs:
        lines.append(f"| {run} | " + " | ".join(_cell(value.get((run, n))) for n in lengths) + " |")
    lines.append("| memoryless baseline | " + " | ".join(_cell(baseline.get(n)) for n in lengths) + " |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    return "" if v is None else fmt(v)


def length_plot(results: list[dict], split: str, metric: str, path: str | Path) -> Path:
    """``metric`` on ``split`` against the length, one line per run, the baseline dashed (extra ``plot``)."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths, runs, value, baseline = _grid(results, split, metric)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for run in runs:
        points = [(n, value[(run, n)]) for n in lengths if value.get((run, n)) is not None]
        ax.plot(*zip(*points), marker="o", label=Path(run).name)
    ax.plot(lengths, [baseline[n] for n in lengths], "k--", label="memoryless baseline")
    ax.set_xscale("log")
    ax.set_xlabel("sequence length setting (seq_len)")
    ax.set_ylabel(f"{metric} ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
