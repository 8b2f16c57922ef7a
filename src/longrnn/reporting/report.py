"""Tables and learning curves from run directories (they read nothing else).

`report(paths, out)` writes, into ``out``:

* ``report.md``  — one row per configuration (runs that differ only in seed are grouped), the main
  metric on validation and test as mean ± std over seeds with n, the task's memoryless baseline
  (scored on the same test set) beside it, how many seeds solved or diverged; then one row per run, so
  every seed is visible;
* ``report.csv`` — the per-configuration table, machine-readable;
* ``curves-TASK-TLEN.png`` — a picture per (task, T): validation main metric against training step, one
  line per seed, a legend entry per configuration naming what differs between them, the baseline dashed,
  diverged runs marked (`longrnn.reporting.curves`; needs the ``plot`` extra, skipped with a note without);
* ``vaa.png`` — when runs measured it (``--vaa``, ``--warmup``), the reachable multistability VAA
  before training, after warm-up and over training (`longrnn.reporting.vaa_plot`);
* ``report.html`` (with ``html=True``) — the tables (sortable) and the curves in one self-contained file
  (`longrnn.reporting.html`), interactive (zoom, hover) where plotly is installed.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from longrnn import runs
from longrnn.errors import UsageError
from longrnn.reporting import curves, labels
from longrnn.reporting.formatting import finite, fmt, length, mean_std


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


def model_names(records: list[dict]) -> dict[str, str]:
    """Each configuration's name in the report: `labels.label`, with the settings that tell apart two
    configurations of one task and length that would share it (an Adam and an SGD run, say)."""
    by_panel = defaultdict(dict)
    for r in records:
        panel = (r["config"].task.name, str(length(r["config"], r["summary"] or {})))
        by_panel[panel][r["config"].identity()] = r["config"]
    names = {}
    for configs in by_panel.values():
        names.update(zip(configs, labels.distinct(list(configs.values()), labels.label)))
    return names


def summarize(records: list[dict]) -> list[dict]:
    """Aggregate runs that share a configuration (everything but the seed)."""
    groups = defaultdict(list)
    for r in records:
        groups[r["config"].identity()].append(r)
    names = model_names(records)
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
                "model": names[config_id],
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
    """The report's table: one row per configuration (`summarize`), mean ± std over seeds beside the
    memoryless baseline."""
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
    """``rows`` as CSV at ``path`` (written atomically; the first row's keys are the columns)."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    runs.write_text(path, buf.getvalue())


def _plot_vaa(path: Path, records: list[dict]) -> bool:
    """vaa.png, a panel per (task, T), if any run logged VAA; returns whether it was drawn."""
    from longrnn.reporting.vaa_plot import has_vaa, plot_vaa

    grouped = defaultdict(list)
    for r in records:
        if has_vaa(r["metrics"]):
            grouped[f"{r['config'].task.name}, T={length(r['config'], r['summary'] or {})}"].append(r)
    panels = {}
    for title, group in sorted(grouped.items()):
        configs = list({r["config"].identity(): r["config"] for r in group}.values())
        names = dict(zip((c.identity() for c in configs), labels.legend(configs, labels.label)[0]))
        panels[title] = [(names[r["config"].identity()], r["metrics"]) for r in group]
    if panels:
        plot_vaa(path, panels, legend_below=True)
    return bool(panels)


def report(paths, out: str | Path | None = None, plots: bool = True, html: bool = False) -> str:
    """Write report.md, report.csv and the curves' pictures (with ``html``, a self-contained report.html)
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
    drawn, drew_vaa = [], False
    if plots and records:  # nothing read: nothing to draw
        try:
            for panel in curves.panels(records):
                curves.draw_png(panel, out / panel.file)
                drawn.append(panel)
            drew_vaa = _plot_vaa(out / "vaa.png", records)
        except UsageError as e:
            text += f"\n(no learning curves: {e})\n"
    if html:
        runs.write_text(out / "report.html", _html(text, drawn, drew_vaa, out))
    return text


def _html(text: str, drawn: list, drew_vaa: bool, out: Path) -> str:
    """report.html: the tables (sortable), and each panel interactive where plotly is installed (its
    picture otherwise), everything inlined."""
    from longrnn.reporting.html import to_html

    script = curves.plotly_script()
    figures = {}
    for i, p in enumerate(drawn if script else []):
        scores = curves.scores_div(p, f"scores-{i}")
        figures[p.file] = curves.plotly_div(p, f"curves-{i}") + (f"\n{scores}" if scores else "")
    page = f"# Report\n\n{text}"
    if drawn:
        page += ("\n## Learning curves\n\nValidation score of every seed against the training step, one panel "
                 "per task and length; a legend entry per configuration names what differs between them, the "
                 "line under each title what they share." + (" Under each panel, the test score of every seed "
                 "and its mean per configuration. Drag to zoom, double-click to reset, hover for a point's run."
                 if script else " (Install the extra `plot` with plotly for zoom and hover.)")
                 + "\n" + "".join(f"\n![{p.alt}]({p.file})\n" for p in drawn))
    if drew_vaa:
        page += "\n![VAA before and during training, every seed](vaa.png)\n"
    return to_html(page, out, figures=figures, script=script)
