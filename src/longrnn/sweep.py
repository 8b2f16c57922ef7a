"""Grids of runs: a base config × tasks × variants × seeds, from one TOML file, run locally.

    name = "fastgate"
    results = "docs/results/fastgate.md"     # the page `longrnn reproduce` regenerates
    out = "results/fastgate"                 # run directories (config, metrics, summary are kept)
    seeds = [0, 1, 2]
    [base.train]                             # applies to every run
    lr = 0.001
    [[tasks]]                                # one entry per task setting
    label = "adding T=200"
    task = { name = "adding", seq_len = 200 }
    train = { steps = 4000 }
    [[variants]]                             # one entry per model setting
    label = "LSTM, fast gate"
    model = { cell = "lstm", gate = "fast" }

Each run is ``base ← task entry ← variant entry ← seed`` (later tables win, key by key; the text
``{seq_len}`` in a string becomes the run's task length, e.g. ``forget_init = "chrono:{seq_len}"``) and lives in
``out/<task label>--<variant label>--s<seed>``. Running a sweep again skips finished runs and resumes
killed ones from their checkpoints, so a long reproduction can be stopped and continued at will.
With ``jobs > 1`` runs go to that many worker processes, one torch thread each.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from longrnn.config import RunConfig, from_dict
from longrnn.errors import UsageError, check_positive


@dataclass
class Run:
    task_label: str
    variant_label: str
    config: RunConfig


@dataclass
class Sweep:
    name: str
    description: str
    results: str
    out: str
    seeds: list[int]
    task_labels: list[str]
    variant_labels: list[str]
    runs: list[Run] = field(default_factory=list)


def slug(label: str) -> str:
    """A label as a file-name part: ``"LSTM, fast gate"`` -> ``"lstm-fast-gate"``."""
    return re.sub(r"[^a-z0-9=.]+", "-", label.lower()).strip("-")


def merge(*tables: dict) -> dict:
    """Nested dicts merged key by key; later tables win."""
    out: dict = {}
    for table in tables:
        for key, value in table.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def substitute(table, placeholder: str, value: str):
    """Replace ``placeholder`` in every string of a nested table (e.g. ``forget_init = "chrono:{seq_len}"``)."""
    if isinstance(table, dict):
        return {k: substitute(v, placeholder, value) for k, v in table.items()}
    return table.replace(placeholder, value) if isinstance(table, str) else table


def _entries(d: dict, key: str, path: Path) -> list[tuple[str, dict]]:
    entries = d.get(key)
    if not entries or not isinstance(entries, list):
        raise UsageError(f"{path}: needs at least one [[{key}]] table")
    out = []
    for entry in entries:
        if "label" not in entry:
            raise UsageError(f"{path}: every [[{key}]] table needs a label")
        body = {k: v for k, v in entry.items() if k != "label"}
        out.append((str(entry["label"]), body))
    return out


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"sweep file {str(path)!r} does not exist")
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    known = {"name", "description", "results", "out", "seeds", "base", "tasks", "variants"}
    unknown_keys = set(d) - known
    if unknown_keys:
        raise UsageError(f"{path}: unknown keys {sorted(unknown_keys)}; allowed: {sorted(known)}")
    seeds = d.get("seeds", [0])
    tasks, variants = _entries(d, "tasks", path), _entries(d, "variants", path)
    sweep = Sweep(
        name=d.get("name", path.stem),
        description=d.get("description", ""),
        results=d.get("results", f"docs/results/{path.stem}.md"),
        out=d.get("out", f"results/{path.stem}"),
        seeds=list(seeds),
        task_labels=[label for label, _ in tasks],
        variant_labels=[label for label, _ in variants],
    )
    for task_label, task in tasks:
        for variant_label, variant in variants:
            for seed in seeds:
                name = f"{slug(task_label)}--{slug(variant_label)}--s{seed}"
                table = merge(d.get("base", {}), task, variant, {"train": {"seed": seed}})
                table = substitute(table, "{seq_len}", str(table.get("task", {}).get("seq_len")))
                config = from_dict({**table, "out": sweep.out, "name": name})
                sweep.runs.append(Run(task_label, variant_label, config))
    return sweep


def _run_one(config: RunConfig) -> dict:
    from longrnn.training import train

    try:
        return train(config, resume=True, quiet=True)
    except UsageError as e:
        return {"status": "failed", "message": str(e), "run_dir": str(Path(config.out) / config.run_name())}


def run_sweep(sweep: Sweep, jobs: int = 1, quiet: bool = False) -> list[dict]:
    """Run every run of the sweep that has not finished; returns their summaries in sweep order."""
    check_positive("jobs", jobs)
    configs = [run.config for run in sweep.runs]
    if jobs > 1:
        for config in configs:
            config.train.threads = 1
    bar = tqdm(total=len(configs), disable=quiet, desc=f"sweep {sweep.name}")
    results: list[dict | None] = [None] * len(configs)
    if jobs == 1:
        for i, config in enumerate(configs):
            results[i] = _run_one(config)
            bar.update(1)
    else:
        context = multiprocessing.get_context("spawn")
        # one process per run, so each summary's peak memory (ru_maxrss on a CPU) is that run's own
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = {pool.submit(_run_one, config): i for i, config in enumerate(configs)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return results
