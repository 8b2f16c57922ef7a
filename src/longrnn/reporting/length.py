"""Length generalisation: a run's score at lengths other than the one it trained at.

`longrnn eval RUN... --seq-len 100 1000 10000` scores every run at each length and gives its results to
`length_table` (Markdown: a row per run, a column per length, the memoryless baseline's row last) and
`length_plot` (the main metric against the length, log-scaled, a line per run and the baseline dashed).
A result is the dict `longrnn eval` prints: ``run``, ``seq_len``, ``baseline`` and a dict per split.
"""

from __future__ import annotations

import math
from pathlib import Path

from longrnn.errors import require_extra
from longrnn.reporting.formatting import fmt, seeds_text


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


def _length_axis(ax, lengths: list[int]) -> None:
    """A log-scaled x axis with a labelled tick at each tested length."""
    ax.set_xscale("log")
    ax.set_xticks(lengths, [f"{n:,}" for n in lengths], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("sequence length setting (seq_len)")


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
    _length_axis(ax, lengths)
    ax.set_ylabel(f"{metric} ({split})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --- a sweep's results page: the runs' `test_lengths` (training/length_test.py) --------------------
def _records(sweep, table: dict, task_label: str) -> list:
    """Every run record of a task (None for a run not finished), variant by variant."""
    return [r for v in sweep.variant_labels for r in table[(task_label, v)]]


def _tested(records: list) -> list[dict]:
    """The ``test_lengths`` of the finished runs of ``records`` that were tested at other lengths."""
    return [r["summary"]["test_lengths"] for r in records if r and r["summary"].get("test_lengths")]


def _ladder(records: list) -> tuple[list[int], str | None]:
    """The lengths the finished runs of ``records`` were tested at, and their main metric."""
    summaries = [r["summary"] for r in records if r and r["summary"].get("test_lengths")]
    lengths = sorted({int(n) for s in summaries for n in s["test_lengths"]})
    return lengths, (summaries[0]["main_metric"] if summaries else None)


def sweep_length_table(sweep, task_label: str, table: dict) -> str:
    """Per variant: the main test metric at each tested length, mean ± std then every seed, and the
    memoryless baseline's row; '' when no run of the task was tested at other lengths."""
    records = _records(sweep, table, task_label)
    lengths, metric = _ladder(records)
    if not lengths:
        return ""
    lines = [f"Length generalisation, {task_label}: test {metric} of the kept weights on {_size(records)} sequences "
             "at each length setting (mean ± std, then every seed):", "",
             "| variant | " + " | ".join(f"T={n:,}" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
    baseline = _baselines(records, lengths, metric)
    for variant in sweep.variant_labels:
        tested = _tested(table[(task_label, variant)])
        if not tested:
            continue
        cells = [seeds_text([t[str(n)]["test"][metric] for t in tested if str(n) in t]) for n in lengths]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines.append("| memoryless baseline | " + " | ".join(_cell(baseline.get(n)) for n in lengths) + " |")
    return "\n".join(lines) + "\n"


def _baselines(records: list, lengths: list[int], metric: str) -> dict:
    """{length: the memoryless baseline's metric on that length's test set}."""
    found = _tested(records)
    return {n: next((t[str(n)]["baseline"][metric] for t in found if str(n) in t), None) for n in lengths}


def _capped(value: float, top: float | None) -> float:
    """A value drawn on a plot whose axis ends at ``top`` (None: no end): beyond it, or not finite, at the top."""
    if top is None:
        return value
    return top if not math.isfinite(value) or value > top else value


def _size(records: list) -> str:
    sizes = {r["config"].train.test_lengths_size for r in records if r}
    return ", ".join(map(str, sorted(sizes)))


def plot_sweep_lengths(sweep, table: dict, path: str | Path) -> bool:
    """``<page stem>_length.png``: per task, the main metric against the length, a line per variant
    (its mean) over every seed's points, the baseline dashed; returns whether any run was tested."""
    panels = [t for t in sweep.task_labels if _ladder(_records(sweep, table, t))[0]]
    if not panels:
        return False
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from longrnn.reporting.colours import colour

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    n = len(sweep.variant_labels)
    for ax, task_label in zip(axes[0], panels):
        records = _records(sweep, table, task_label)
        lengths, metric = _ladder(records)
        baseline = _baselines(records, lengths, metric)
        higher = next(r["summary"]["higher_is_better"] for r in records if r)
        top = None if higher else 2 * max(v for v in baseline.values() if v is not None)
        for i, variant in enumerate(sweep.variant_labels):
            tested = _tested(table[(task_label, variant)])
            if not tested:
                continue
            means = []
            for length in lengths:
                values = [_capped(t[str(length)]["test"][metric], top) for t in tested if str(length) in t]
                ax.scatter([length] * len(values), values, s=10, color=colour(i, n), alpha=0.5)
                means.append(sum(values) / len(values) if values else float("nan"))
            ax.plot(lengths, means, marker="o", color=colour(i, n), label=variant)
        ax.plot(lengths, [baseline.get(length, float("nan")) for length in lengths], "k--", label="memoryless baseline")
        _length_axis(ax, lengths)
        if top is not None:
            ax.set_ylim(0, top * 1.02)
        ax.set_title(task_label + ("" if top is None else f" (worse than {fmt(top)} or not finite: at the top)"),
                     fontsize=9)
        ax.set_ylabel(f"test {metric}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)
    return True
