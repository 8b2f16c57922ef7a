"""Tables and learning curves from run directories (they read nothing else).

`report(paths, out)` writes, into ``out``:

* ``report.md``  — one row per configuration (runs that differ only in seed are grouped), the main
  metric on validation and test as mean ± std over seeds with n, the task's memoryless baseline
  (scored on the same test set) beside it, how many seeds solved or diverged; then one row per run, so
  every seed is visible;
* ``report.csv`` — the per-configuration table, machine-readable;
* ``curves.png`` — validation main metric against training step, one line per seed, the baseline
  dashed (needs the ``plot`` extra; skipped with a note if matplotlib is missing);
* ``vaa.png`` — when runs measured it (``--vaa``, ``--warmup``), the reachable multistability VAA
  before training, after warm-up and over training (`longrnn.reporting.vaa_plot`);
* ``report.html`` (with ``html=True``) — the tables and the curves in one file (`longrnn.reporting.html`).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from longrnn import runs
from longrnn.errors import UsageError, require_extra
from longrnn.reporting.colours import colour
from longrnn.reporting.formatting import finite, fmt, length, mean_std
from longrnn.reporting.leaderboard import layer_and_training_settings


def load_runs(paths, damaged: list[str] | None = None) -> list[dict]:
    """One record per run directory: its config, summary (None while unfinished) and metrics log. A run
    whose files cannot be read is left out; with ``damaged`` given, its reason is appended there, else
    the first such run raises."""
    records = []
    for orphan in _runs_without_config(paths):
        if damaged is None:
            raise runs.DamagedFile(f"{orphan / runs.CONFIG} is missing beside the run's other files")
        damaged.append(f"{orphan / runs.CONFIG} is missing beside the run's other files; restore it from a copy")
    for run_dir in runs.find_runs(paths):
        try:
            record = {"dir": run_dir, "config": runs.read_config(run_dir), "summary": runs.read_summary(run_dir),
                      "metrics": runs.read_metrics(run_dir)}
        except UsageError as e:
            if damaged is None:
                raise
            damaged.append(str(e))
            continue
        records.append(record)
    return records


def _runs_without_config(paths) -> list[Path]:
    """Folders below ``paths`` holding a run's summary.json or model.pt but no config.toml (a run that lost
    it): named, so that a report never drops a run unsaid."""
    found = set()
    for p in map(Path, paths):
        for name in (runs.SUMMARY, runs.MODEL):
            found.update(f.parent for f in ([p / name] if (p / name).exists() else p.rglob(name) if p.is_dir() else [])
                         if not (f.parent / runs.CONFIG).exists())
    return sorted(found)


def _label(config) -> str:
    m = config.model
    named = {k: v for k, v in (("gate", m.gate), ("forget_init", m.forget_init), ("engine", m.engine)) if v}
    opts = "".join(f",{k}={v}" for k, v in sorted({**config.task.options, **named, **m.options}.items()))
    extras = "".join(f", {setting}" for setting in layer_and_training_settings(config))
    return f"{m.cell} h{m.hidden_size}x{m.layers}{opts} ({config.train.trainer}, lr {config.train.lr:g}{extras})"


def summarize(records: list[dict]) -> list[dict]:
    """Aggregate runs that share a configuration (everything but the seed)."""
    groups = defaultdict(list)
    for r in records:
        groups[r["config"].identity()].append(r)
    rows = []
    for config_id, group in groups.items():
        done = [r["summary"] for r in group if r["summary"] is not None]
        config = group[0]["config"]
        first = done[0] if done else {}
        metric = first.get("main_metric", "")
        val = [s["validation"][metric] for s in done if s.get("validation")]
        test = [s["test"][metric] for s in done if s.get("test")]
        val_mean, val_std = mean_std(val)
        test_mean, test_std = mean_std(test)
        rows.append(
            {
                "task": config.task.name,
                "seq_len": length(config, first),
                "model": _label(config),
                "config_id": config_id,
                "metric": metric,
                "n": len(finite(test)),  # seeds with a defined test score (an undefined one is not averaged)
                "runs": len(group),
                "solved": sum(s["status"] == "solved" for s in done),
                "diverged": sum(s["status"] == "diverged" for s in done),
                "val_mean": val_mean,
                "val_std": val_std,
                "test_mean": test_mean,
                "test_std": test_std,
                "baseline": first.get("baseline", {}).get(metric),
                "wall_time_s": statistics.fmean([s["wall_time_s"] for s in done]) if done else None,
            }
        )
    return sorted(rows, key=lambda r: (r["task"], str(r["seq_len"]), r["model"]))


def markdown(rows: list[dict], records: list[dict]) -> str:
    out = io.StringIO()
    out.write("| task | T | model | metric | validation | test (mean ± std) | n "
              "| memoryless baseline (test set) | solved | diverged | time (s) |\n")
    out.write("|---|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        out.write(
            f"| {r['task']} | {r['seq_len']} | {r['model']} | {r['metric']} "
            f"| {fmt(r['val_mean'], 4)} ± {fmt(r['val_std'], 2)} | {fmt(r['test_mean'], 4)} ± {fmt(r['test_std'], 2)} "
            f"| {r['n']}/{r['runs']} | {fmt(r['baseline'], 4)} | {r['solved']} | {r['diverged']} "
            f"| {fmt(r['wall_time_s'], 3)} |\n"
        )
    out.write("\nEvery run:\n\n| run | seed | status | steps | best step | validation | test |\n"
              "|---|---|---|---|---|---|---|\n")
    for rec in records:
        s = rec["summary"]
        if s is None:
            out.write(f"| {rec['dir'].name} | {rec['config'].train.seed} | incomplete | — | — | — | — |\n")
            continue
        metric = s["main_metric"]
        val = (s.get("validation") or {}).get(metric)
        test = (s.get("test") or {}).get(metric)
        out.write(
            f"| {rec['dir'].name} | {s['seed']} | {s['status']} | {s['steps']} | {s['best_step'] or '—'} "
            f"| {fmt(val, 4)} | {fmt(test, 4)} |\n"
        )
    return out.getvalue()


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    runs.write_text(path, buf.getvalue())


def _first_evaluation(metrics: list[dict]) -> dict:
    """The first record of a training evaluation (not a step-0 ``phase`` record: VAA before training)."""
    return next((m for m in metrics if "phase" not in m), {})


def plot_curves(path: Path, records: list[dict]) -> None:
    """Validation main metric against step: a panel per (task, T), a colour per configuration."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = defaultdict(list)
    for r in records:
        s = r["summary"] or {}
        panels[(r["config"].task.name, length(r["config"], s))].append(r)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, ((task, seq_len), group) in zip(axes[0], sorted(panels.items(), key=str)):
        labels = list(dict.fromkeys(_label(r["config"]) for r in group))
        metric, baseline = None, None
        for r in group:
            s = r["summary"] or {}
            metric = s.get("main_metric") or metric or next(
                (k[4:] for k in _first_evaluation(r["metrics"]) if k.startswith("val_") and k != "val_loss"),
                "loss",
            )
            baseline = (s.get("baseline") or {}).get(metric, baseline)
            label = _label(r["config"])
            steps = [m["step"] for m in r["metrics"] if f"val_{metric}" in m]
            values = [m[f"val_{metric}"] for m in r["metrics"] if f"val_{metric}" in m]
            ax.plot(steps, values, color=colour(labels.index(label), len(labels)), lw=1, alpha=0.8,
                    label=label if label not in ax.get_legend_handles_labels()[1] else None)
        if baseline is not None:
            ax.axhline(baseline, color="k", ls="--", lw=1, label="memoryless baseline")
        if metric in ("mse", "ce", "loss"):
            ax.set_yscale("log")
        ax.set(title=f"{task}, T={seq_len}", xlabel="training step", ylabel=f"validation {metric}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_vaa(path: Path, records: list[dict]) -> bool:
    """vaa.png, a panel per (task, T), if any run logged VAA; returns whether it was drawn."""
    from longrnn.reporting.vaa_plot import has_vaa, plot_vaa

    panels = defaultdict(list)
    for r in records:
        if has_vaa(r["metrics"]):
            seq_len = (r["summary"] or {}).get("seq_len", r["config"].task.seq_len)
            panels[f"{r['config'].task.name}, T={seq_len}"].append((_label(r["config"]), r["metrics"]))
    if panels:
        plot_vaa(path, dict(sorted(panels.items())))
    return bool(panels)


def report(paths, out: str | Path | None = None, plots: bool = True, html: bool = False) -> str:
    """Write report.md, report.csv and curves.png (and with ``html``, a self-contained report.html)
    into ``out`` (default: the first folder given); return the Markdown text."""
    damaged: list[str] = []
    records = load_runs(paths, damaged)
    return write_report(records, damaged, report_folder(paths, out), plots, html)


def report_folder(paths, out: str | Path | None = None) -> Path:
    """Where a report goes: ``out``, else the first folder given, else the current one."""
    return Path(out) if out else (Path(paths[0]) if Path(paths[0]).is_dir() else Path("."))


def write_report(records: list[dict], damaged: list[str], out: Path, plots: bool = True, html: bool = False) -> str:
    """`report` for runs already read by `load_runs` (``damaged``: the reasons of those it could not read)."""
    rows = summarize(records)
    text = markdown(rows, records)
    if damaged:  # the other runs are reported; these are named, never silently dropped
        text += "\nNot read (damaged files):\n\n" + "".join(f"* {reason}\n" for reason in damaged)
    out.mkdir(parents=True, exist_ok=True)
    runs.write_text(out / "report.md", text)
    write_csv(out / "report.csv", rows)
    drew_vaa = False
    if plots and records:  # nothing read: nothing to draw
        try:
            plot_curves(out / "curves.png", records)
            drew_vaa = _plot_vaa(out / "vaa.png", records)
        except UsageError as e:
            text += f"\n(no curves.png: {e})\n"
    if html:
        from longrnn.reporting.html import to_html

        curves = "\n![validation curves, every seed](curves.png)\n" if (out / "curves.png").exists() else ""
        curves += "\n![VAA before and during training, every seed](vaa.png)\n" if drew_vaa else ""
        runs.write_text(out / "report.html", to_html(f"# Report\n\n{text}{curves}", out))
    return text
