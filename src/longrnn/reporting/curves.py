"""Learning curves of a report: one panel per (task, T), drawn once as a picture and once interactive;
and beside each, in report.html, the panel's test scores, every seed a dot (`scores_div`).

`panels(records)` turns run records (`report.load_runs`) into `Panel`s: the validation main metric of
every seed against the training step, a colour and a legend entry per configuration that name what
differs between the configurations (`labels.legend`), what they share as the panel's subtitle, the
memoryless baseline (test set, from the runs' summaries), and the runs that diverged with the step where
they did. `draw_png` draws a panel with matplotlib (extra ``plot``) at a readable size, its legend below
the axes; `plotly_div` draws the same panel with plotly (zoom, hover), for report.html. A run with one
evaluation is a marker, a diverged run ends in a cross (or, without any evaluation, is a cross in the
legend saying so), never an empty legend entry.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from longrnn.errors import require_extra
from longrnn.reporting import labels
from longrnn.reporting.formatting import length

LOG_SCALE = ("mse", "ce", "loss", "nll")  # metrics that span decades
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#ff7f0e"]  # matplotlib's tab10 reordered: the first pairs differ in hue and in lightness
DASHES = ("solid", "dash", "dot")
MPL_DASH = {"solid": "-", "dash": "--", "dot": ":"}


@dataclass
class Series:
    """One run's curve: its configuration's legend entry and colour, seed, steps and values."""

    label: str
    colour: str
    dash: str  # "solid", then "dash" and "dot" for the 11th configuration on: ten colours are not enough
    seed: int
    steps: list[int]
    values: list[float]
    diverged_at: int | None = None  # the step at which the run stopped with a non-finite loss or gradient
    test: float | None = None  # the best-on-validation weights' test score (None: unfinished, or no score)
    finished: bool = True  # False: no summary.json yet (running, or stopped before its end)


@dataclass
class Panel:
    """One (task, T) of a report: its validation ``metric`` (the tasks' main metric), what every
    configuration shares (``common``), the memoryless baseline on the test set (None until a run finished)
    and a `Series` per run."""

    task: str
    seq_len: object
    metric: str
    common: str  # the settings every configuration of the panel shares
    baseline: float | None
    series: list[Series] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.task}, T={self.seq_len}"

    @property
    def file(self) -> str:
        """``curves-copy-T200.png``: the panel's picture."""
        return f"curves-{re.sub(r'[^A-Za-z0-9_.]+', '_', str(self.task))}-T{self.seq_len}.png"

    @property
    def log_scale(self) -> bool:
        return self.metric in LOG_SCALE

    @property
    def alt(self) -> str:
        configs = len({s.label for s in self.series})
        diverged = sum(s.diverged_at is not None for s in self.series)
        unfinished = sum(not s.finished for s in self.series)
        ended = f"{f', {diverged} diverged' if diverged else ''}{f', {unfinished} not finished' if unfinished else ''}"
        return (f"Validation {self.metric} against training step, {self.title}: {configs} configuration"
                f"{'s' if configs != 1 else ''}, {len(self.series)} run{'s' if len(self.series) != 1 else ''}"
                f"{ended}; "
                + ("memoryless baseline dashed" if self.baseline is not None else "no memoryless baseline yet"))


def _metric(record: dict) -> str:
    s = record["summary"] or {}
    if s.get("main_metric"):
        return s["main_metric"]
    first = next((m for m in record["metrics"] if "phase" not in m), {})
    return next((k[4:] for k in first if k.startswith("val_") and k != "val_loss"), "loss")


def _diverged_at(summary: dict | None) -> int | None:
    if not summary or summary.get("status") != "diverged":
        return None
    found = re.search(r"at step (\d+)", summary.get("message") or "")
    return int(found.group(1)) if found else summary.get("steps")


def panels(records: list[dict]) -> list[Panel]:
    """A `Panel` per (task, T) of ``records``, in task order."""
    grouped = defaultdict(list)
    for r in records:
        grouped[(r["config"].task.name, length(r["config"], r["summary"] or {}))].append(r)
    out = []
    for (task, seq_len), group in sorted(grouped.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        by_config = list({r["config"].identity(): r["config"] for r in group}.values())
        entries, common = labels.legend(by_config, labels.label)
        order = {c.identity(): i for i, c in enumerate(by_config)}
        metric = _metric(group[0])
        baseline = next(((r["summary"].get("baseline") or {}).get(metric) for r in group
                         if r["summary"] and (r["summary"].get("baseline") or {}).get(metric) is not None), None)
        panel = Panel(task, seq_len, metric, common, baseline)
        for r in sorted(group, key=lambda r: (order[r["config"].identity()], r["config"].train.seed)):
            i = order[r["config"].identity()]
            points = [(m["step"], m[f"val_{metric}"]) for m in r["metrics"] if m.get(f"val_{metric}") is not None]
            test = ((r["summary"] or {}).get("test") or {}).get(metric)
            panel.series.append(Series(entries[i], PALETTE[i % len(PALETTE)], DASHES[i // len(PALETTE) % 3],
                                       r["config"].train.seed, [p[0] for p in points], [p[1] for p in points],
                                       _diverged_at(r["summary"]), test, r["summary"] is not None))
        out.append(panel)
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _ending_text(s: Series) -> str:
    """How a run ended, if a legend must say it: diverged (at which step), or not finished."""
    if s.diverged_at is not None:
        return (f"{s.label}, seed {s.seed}: diverged at step {s.diverged_at}"
                + ("" if s.steps else ", before its first evaluation"))
    if not s.finished:
        return (f"{s.label}, seed {s.seed}: not finished (" + (f"last evaluation at step {s.steps[-1]})" if s.steps
                                                                else "no evaluation yet)"))
    return ""


ENDING = {"diverged": ("x", "x"), "unfinished": (">", "triangle-right")}  # matplotlib's marker, plotly's


def _ending(s: Series) -> str | None:
    return "diverged" if s.diverged_at is not None else "unfinished" if not s.finished else None


def _baseline_text(panel: Panel) -> str:
    return f"memoryless baseline (test set): {panel.baseline:.4g}"


def _legend_entries(panel: Panel) -> list[tuple[str, dict]]:
    """The picture's legend in order, each entry a name and the style of its `Line2D` handle: a configuration
    with a line (a marker when its first run has one evaluation), how a run ended (diverged, not finished),
    the baseline."""
    entries, named = [], set()
    for s in panel.series:
        if s.steps and s.label not in named:  # a run without a point has no line to name
            named.add(s.label)
            entries.append((s.label, {"color": s.colour, "ls": MPL_DASH[s.dash], "lw": 1.6,
                                      "marker": "o" if len(s.steps) == 1 else None}))
        if (ending := _ending(s)) is not None:
            entries.append((_ending_text(s), {"ls": "none", "marker": ENDING[ending][0], "ms": 8, "mew": 2,
                                              "color": s.colour}))
    if panel.baseline is not None:
        entries.append((_baseline_text(panel), {"color": "black", "ls": "--", "lw": 1.2}))
    return entries


def draw_png(panel: Panel, path: Path) -> None:
    """The panel as a PNG at 880 px wide, its legend below the axes (one entry per configuration, one per
    diverged run), its shared settings as the subtitle."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    entries = _legend_entries(panel)
    names = [_wrap(name, 110) for name, _ in entries]
    lines = sum(name.count("\n") + 1 for name in names)  # the legend's wrapped lines
    fig, (ax, key) = plt.subplots(2, 1, figsize=(8, 4.4 + 0.2 * lines), dpi=110,
                                  gridspec_kw={"height_ratios": [4.0, 0.2 * lines + 0.1]})
    key.axis("off")
    for s in panel.series:
        ax.plot(s.steps, s.values, color=s.colour, ls=MPL_DASH[s.dash], lw=1.4, alpha=0.85,
                marker="o" if len(s.steps) == 1 else None, ms=6)
        if (ending := _ending(s)) is not None and s.steps:
            ax.plot(s.steps[-1:], s.values[-1:], ls="none", marker=ENDING[ending][0], ms=9, mew=2, color=s.colour)
    if panel.baseline is not None:
        ax.axhline(panel.baseline, color="black", ls="--", lw=1.2)
    if panel.log_scale and all(v > 0 for s in panel.series for v in s.values):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"validation {panel.metric}")
    fig.suptitle(panel.title + ("" if panel.baseline is not None else " (no run finished: baseline not known)"),
                 fontsize=12)
    if panel.common:
        ax.set_title(_wrap(panel.common, 110), fontsize=8, color="#333333")
    ax.grid(alpha=0.3)
    key.legend([Line2D([], [], **style) for _, style in entries], names, loc="upper left", fontsize=8.5,
               frameon=False, borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plotly_div(panel: Panel, div_id: str) -> str:
    """The panel as a plotly chart (a <div> and its script; plotly.js itself is included once by the page),
    with zoom and hover: each point tells its configuration, seed, step and value."""
    go = require_extra("plotly.graph_objects", "plot")
    fig = go.Figure()
    shown = set()
    for s in panel.series:
        fig.add_trace(go.Scatter(
            x=s.steps, y=s.values, mode="markers" if len(s.steps) == 1 else "lines", name=s.label,
            legendgroup=s.label, showlegend=bool(s.steps) and s.label not in shown,
            line={"color": s.colour, "width": 1.6, "dash": s.dash}, marker={"color": s.colour, "size": 8},
            hovertemplate=f"{s.label}<br>seed {s.seed}<br>step %{{x}}<br>{panel.metric} %{{y:.4g}}<extra></extra>"))
        if s.steps:
            shown.add(s.label)
        if (ending := _ending(s)) is not None:
            fig.add_trace(go.Scatter(
                x=s.steps[-1:] or [None], y=s.values[-1:] or [None], mode="markers",
                marker={"symbol": ENDING[ending][1], "size": 11, "color": s.colour}, name=_ending_text(s),
                hovertemplate=f"{_ending_text(s)}<extra></extra>"))
    if panel.baseline is not None:
        fig.add_hline(y=panel.baseline, line={"color": "black", "dash": "dash", "width": 1.2})
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": "black", "dash": "dash"},
                                 name=_baseline_text(panel)))
    title = panel.title + ("" if panel.baseline is not None else " (no run finished: baseline not known)")
    fig.update_layout(
        title={"text": f"{title}<br><sup>{_wrap(panel.common, 120).replace(chr(10), '<br>')}</sup>"},
        xaxis_title="training step", yaxis_title=f"validation {panel.metric}", template="plotly_white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}, height=480 + 22 * len(shown),
        margin={"t": 90}, font={"color": "#222222"})
    if panel.log_scale and all(v > 0 for s in panel.series for v in s.values):
        fig.update_yaxes(type="log")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def scores_div(panel: Panel, div_id: str) -> str | None:
    """The panel's test scores as a plotly chart: a row per configuration, a dot per seed (hover: seed and
    score), the configuration's mean as a bar mark, the memoryless baseline as a dashed line; None when no
    run of the panel has a test score."""
    scored = [s for s in panel.series if s.test is not None and s.test == s.test]  # finite: NaN != NaN
    if not scored:
        return None
    go = require_extra("plotly.graph_objects", "plot")
    fig = go.Figure()
    rows = list(dict.fromkeys(s.label for s in scored))
    for label in rows:
        runs = [s for s in scored if s.label == label]
        fig.add_trace(go.Scatter(
            x=[s.test for s in runs], y=[label] * len(runs), mode="markers", name=label, showlegend=False,
            marker={"color": runs[0].colour, "size": 10, "opacity": 0.8},
            hovertemplate=[f"seed {s.seed}: test {panel.metric} {s.test:.4g}<extra></extra>" for s in runs]))
        fig.add_trace(go.Scatter(
            x=[sum(s.test for s in runs) / len(runs)], y=[label], mode="markers", showlegend=False,
            marker={"symbol": "line-ns-open", "size": 22, "color": runs[0].colour, "line": {"width": 3}},
            hovertemplate=f"mean of {len(runs)} seed{'s' if len(runs) > 1 else ''}: %{{x:.4g}}<extra></extra>"))
    if panel.baseline is not None:
        fig.add_vline(x=panel.baseline, line={"color": "black", "dash": "dash", "width": 1.2},
                      annotation_text="memoryless baseline", annotation_position="top")
    fig.update_layout(
        title={"text": f"{panel.title}: test {panel.metric}, every seed (bar: mean)"}, template="plotly_white",
        xaxis_title=f"test {panel.metric}", height=160 + 40 * len(rows), margin={"l": 20, "t": 70},
        font={"color": "#222222"}, yaxis={"automargin": True, "autorange": "reversed"})
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def plotly_script() -> str | None:
    """plotly.js, to inline once in a page (no network at view time), or None without the ``plot`` extra's
    plotly."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return get_plotlyjs()
