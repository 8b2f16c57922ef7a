"""The leaderboard: every method on every task and length, under one protocol, from run directories.

A *method* is what a run's config says about how it remembers: the cell, its gate and keep-gate
initialisation, and the trainer (`method_name`). Runs of one method on one task and length may differ
in other settings (hidden size, learning rate, steps); those are *configurations*. The protocol:

1. group finished runs by configuration (everything but the seed);
2. per (task, length, method), select the configuration with the best mean **validation** score;
3. report that configuration's **test** score as mean ± std over its seeds, with n, the memoryless
   baseline on the same test set, how many seeds reached the task's solved threshold (on the test
   set), mean wall time and peak memory per run;
4. per method and task, the longest length at which the selected configuration solved every seed.

T is the task's ``seq_len`` setting (for ``copy``, the delay; the sequence is 20 steps longer). A task
with options that change what is asked (``copy (recall=3, variable_delay=True)``, ``adding
(variant=rplrnn)``) is a task of its own (`task_variant`): runs are never compared, nor selected, across
variants. The sizes of the fixed sets are not a variant (the same task, other draws).

The test set is only read here, never used to choose. `longrnn report --leaderboard` writes the page.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from longrnn import runs
from longrnn.reporting.formatting import finite, fmt, length, mean_std
from longrnn.runs.config import source_label

SET_SIZES = ("validation_size", "test_size")  # task options that draw other fixed sets, not another task


def task_variant(name: str, options: dict) -> str:
    """The leaderboard's task: its name, the data or system it runs on, and the options that change it,
    e.g. ``"copy (recall=3, variable_delay=True)"``, ``"dysts-Rossler"``."""
    changed = {k: v for k, v in sorted(options.items()) if k not in (*SET_SIZES, "system", "data")}
    variant = f" ({', '.join(f'{k}={v}' for k, v in changed.items())})" if changed else ""
    return name + source_label(options) + variant


def layer_and_training_settings(config) -> list[str]:
    """``["double", "partial warm-up", "mar reg"]``: what besides the cell, its options and the trainer
    changes a method — the double layer, warm-up (partial or full), the regulariser, a length curriculum,
    a start from another run's weights and a readout without bias."""
    m, t = config.model, config.train
    settings = ["double"] if m.double else []
    if t.warmup:
        settings.append("partial warm-up" if m.double and t.warmup_partial else "warm-up")
    if t.reg != "none":
        settings.append(f"{t.reg} reg")
    if t.curriculum:
        settings.append("length curriculum")
    if t.init_from:
        settings.append("continued from a run")
    if not m.readout_bias:
        settings.append("no readout bias")
    return settings


def method_name(config) -> str:
    """``lstm, fast gate, chrono init, warm-up, memup``: the settings that define a memory method (cell,
    gate, keep-gate init, cell options, double layer, warm-up, regulariser, trainer)."""
    m, parts = config.model, [config.model.cell]
    if m.gate not in (None, "sigmoid"):
        parts.append(f"{m.gate} gate")
    if m.forget_init not in (None, "default"):  # chrono's T_max follows the length: one method at every length
        parts.append("chrono init" if m.forget_init.startswith("chrono") else f"{m.forget_init} init")
    parts += [f"{k}={v}" for k, v in sorted(m.options.items())]
    parts += layer_and_training_settings(config)
    if config.train.trainer != "bptt":
        parts.append(config.train.trainer)
    return ", ".join(parts)


def passes(value: float, summary: dict) -> bool:
    """Whether a score reaches the task's solved threshold (never, for a task without one)."""
    threshold = summary["solved_at"]
    if threshold is None:
        return False
    return value >= threshold if summary["higher_is_better"] else value <= threshold


def collect(paths) -> list[dict]:
    """Finished runs as records: config, summary, method."""
    records = []
    for run_dir in runs.find_runs(paths):
        summary = runs.read_summary(run_dir)
        if summary is None or summary.get("status") == "failed" or not summary.get("test"):
            continue
        config = runs.read_config(run_dir)
        records.append({"config": config, "summary": summary, "method": method_name(config)})
    return records


def _mean(values):
    return statistics.fmean(values) if values else None


def _better(val: float | None, best: float | None, sign: int) -> bool:
    """Is a validation mean better than the best so far? An undefined one (None) never is, and any defined
    one beats an undefined best."""
    if val is None:
        return False
    return best is None or sign * val > sign * best


def entries(records: list[dict]) -> list[dict]:
    """One entry per (task, length, method): its validation-selected configuration's test scores. A task
    on named data (a dysts system, a user's file) is one task per name ("dysts-Rossler")."""
    configurations = defaultdict(list)
    for r in records:
        s = r["summary"]
        seq_len = length(r["config"], s)  # the task's own length setting (copy: the delay)
        task = task_variant(s["task"], r["config"].task.options)  # one section per variant, data set, system
        configurations[(task, seq_len, r["method"], r["config"].identity())].append(s)
    best: dict[tuple, dict] = {}
    for (task, seq_len, method, config_id), group in configurations.items():
        metric = group[0]["main_metric"]
        sign = 1 if group[0]["higher_is_better"] else -1
        val, _ = mean_std([s["validation"][metric] for s in group])  # over the defined values
        key = (task, seq_len, method)
        if key not in best or _better(val, best[key]["val"], sign):
            test = [s["test"][metric] for s in group]
            test_mean, test_std = mean_std(test)
            best[key] = {
                "task": task, "seq_len": seq_len, "method": method, "config_id": config_id, "metric": metric,
                "val": val, "test_mean": test_mean, "test_std": test_std, "n": len(finite(test)),
                "solved": None if group[0]["solved_at"] is None else sum(passes(v, group[0]) for v in test),
                "baseline": group[0]["baseline"][metric],
                "wall_time_s": _mean([s["wall_time_s"] for s in group]),
                "peak_memory_mb": _mean([s.get("peak_memory_mb") or 0.0 for s in group]),
                "steps": group[0]["steps"],
            }
    return sorted(best.values(), key=lambda e: (e["task"], e["seq_len"], e["method"]))


def longest_solved(rows: list[dict]) -> dict[tuple[str, str], int | None]:
    """(method, task) -> the longest length whose selected configuration solved every seed."""
    out: dict[tuple[str, str], int | None] = {}
    for e in rows:
        key = (e["method"], e["task"])
        out.setdefault(key, None)
        if e["solved"] is not None and e["n"] and e["solved"] == e["n"]:
            out[key] = max(out[key] or 0, e["seq_len"])
    return out


def markdown(rows: list[dict]) -> str:
    """The leaderboard's rows as one Markdown table per task (a row per length and method), then the
    longest length each method solved on every seed."""
    lines = []
    for task in sorted({e["task"] for e in rows}):
        header = ("| T | method | test (mean ± std) | n | solved | memoryless baseline | validation (selected on) "
                  "| steps | wall time / run (s) | peak memory (MB) |")
        lines += [f"### {task}", "", header, "|---|---|---|---|---|---|---|---|---|---|"]
        for e in (e for e in rows if e["task"] == task):
            solved = "—" if e["solved"] is None else f"{e['solved']}/{e['n']}"
            lines.append(
                f"| {e['seq_len']} | {e['method']} | {fmt(e['test_mean'])} ± {fmt(e['test_std'], 2)} {e['metric']} "
                f"| {e['n']} | {solved} | {fmt(e['baseline'])} | {fmt(e['val'])} | {e['steps']} "
                f"| {fmt(e['wall_time_s'], 3)} | {fmt(e['peak_memory_mb'], 3)} |")
        lines.append("")
    lines += ["### Longest length solved on every seed, per method and task", "",
              "| method | task | longest T solved | lengths tried |", "|---|---|---|---|"]
    tried = defaultdict(set)
    for e in rows:
        tried[(e["method"], e["task"])].add(e["seq_len"])
    for (method, task), T in sorted(longest_solved(rows).items()):
        lengths = ", ".join(map(str, sorted(tried[(method, task)])))
        lines.append(f"| {method} | {task} | {T if T is not None else 'none'} | {lengths} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- BEGIN GENERATED by `longrnn report --leaderboard` -->"
END = "<!-- END GENERATED -->"


def write_leaderboard(paths, page: str | Path) -> Path:
    """Rewrite the generated part of ``page`` (between BEGIN and END; the rest is kept) from ``paths``."""
    rows = entries(collect(paths))
    generated = f"{BEGIN}\n\n{len(rows)} entries from {', '.join(map(str, paths))}.\n\n{markdown(rows)}\n{END}"
    page = Path(page)
    text = page.read_text() if page.exists() else "# Leaderboard\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + generated + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    runs.write_text(page, text)
    return page
