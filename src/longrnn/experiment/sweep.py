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

``curve_x = "sequences"`` draws the page's learning curves against training sequences seen instead of
optimisation steps (a MemUP step is one rollout, a bptt step one batch). ``curve_rows = "model.cell"``
draws one row of panels per value of that config key (each row shows only its variants: eleven
variants in one panel cannot be told apart).

A ``[budget.NAME]`` table (e.g. ``[budget.small]``, ``[budget.paper]``) holds overrides of any of the
above (``seeds``, ``[base...]`` tables key by key, ``[[tasks]]`` lists whole) that
``longrnn reproduce NAME --budget small`` applies; such a run writes to ``out-small`` and
``PAGE-small.md`` unless the budget names its own.

A ``[grid]`` table crosses any config keys: ``"model.cell" = ["lstm", "gru"]`` and ``"train.lr" =
[1e-3, 3e-3]`` make four variants (labelled ``cell=lstm, lr=0.001`` ...), crossed with the
``[[variants]]`` entries if there are any. Without ``[[tasks]]`` the base config's task is the one task.

A task entry's ``per_variant = { "LABEL" = {...} }`` holds settings for one variant on that task only
(e.g. a step budget that depends on both the length and the trainer); its ``variants = ["LABEL", ...]``
limits the variants that run on it, and its ``seeds = [...]`` replaces the sweep's seeds (a long task
with fewer seeds where time does not allow more).

Each run is ``base ← task entry ← variant entry ← per_variant ← seed`` (later tables win, key by key; the text
``{seq_len}`` in a string becomes the run's task length, e.g. ``forget_init = "chrono:{seq_len}"``) and lives in
``out/<task label>--<variant label>--s<seed>``. Running a sweep again skips finished runs and resumes
killed ones from their checkpoints, so a long reproduction can be stopped and continued at will.
With ``jobs > 1`` runs go to that many worker processes, which share the machine's cores. A run that
raises is recorded in ``<run dir>/failed.json`` (error and traceback) and skipped by later sweeps
unless ``retry_failed`` is set; the other runs go on.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from longrnn import runs
from longrnn.console import progress
from longrnn.errors import UsageError, check_positive, require_extra, unknown
from longrnn.runs import trackers
from longrnn.runs.config import RunConfig, check_ranges, from_dict, get_key
from longrnn.training.build import check_options


@dataclass
class Run:
    """One run of a sweep: its task and variant labels (as the file names them) and its full config."""

    task_label: str
    variant_label: str
    config: RunConfig


@dataclass
class Sweep:
    """A sweep file read (`load_sweep`): its runs (tasks x variants x grid x seeds) and where they and the
    results page are written."""

    name: str
    description: str
    results: str
    out: str
    seeds: list[int]
    task_labels: list[str]
    variant_labels: list[str]
    command: str = ""  # the command that runs this sweep again, e.g. "longrnn reproduce fastgate --budget small"
    curve_x: str = "step"  # x axis of the page's learning curves: step, or sequences (training sequences seen)
    curve_rows: str | None = None  # a dotted config key, e.g. "model.cell": a row of curve panels per value
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
        raise UsageError(f"{path}: needs at least one [[{key}]] table (or, for variants, a [grid] table)")
    out = []
    for entry in entries:
        if "label" not in entry:
            raise UsageError(f"{path}: every [[{key}]] table needs a label")
        body = {k: v for k, v in entry.items() if k != "label"}
        out.append((str(entry["label"]), body))
    return out


def _per_variant(tables: dict, variant_labels: list[str], task_label: str, path: Path) -> dict:
    """A task entry's ``per_variant = { "LABEL" = { train = {...} } }``: settings for that task and variant
    only (e.g. a step budget that depends on both the length and the trainer), merged after the variant."""
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise UsageError(f"{path}: task {task_label!r}: per_variant must map variant labels to tables")
    _check_variant_labels(tables, "per_variant", variant_labels, task_label, path)
    return tables


def _only_variants(labels, variant_labels: list[str], task_label: str, path: Path) -> list[str]:
    """A task entry's ``variants = ["LABEL", ...]``: the variants that run on this task (default: all)."""
    if not isinstance(labels, list) or not labels:
        raise UsageError(f"{path}: task {task_label!r}: variants must be a non-empty list of variant labels")
    _check_variant_labels(labels, "variants", variant_labels, task_label, path)
    return labels


def _check_variant_labels(named, key: str, variant_labels: list[str], task_label: str, path: Path) -> None:
    """A task entry's ``key`` may only name the sweep's variants."""
    if strangers := sorted(set(named) - set(variant_labels)):
        raise UsageError(f"{path}: task {task_label!r}: {key} names unknown variants {strangers}; "
                         f"the variants are {variant_labels}")


def nest(dotted: str, value) -> dict:
    """``nest("model.cell", "gru")`` -> ``{"model": {"cell": "gru"}}``."""
    head, _, rest = dotted.partition(".")
    return {head: nest(rest, value) if rest else value}


def grid_entries(grid: dict, path: Path) -> list[tuple[str, dict]]:
    """Every combination of a ``[grid]`` table's lists, as (label, nested table) entries."""
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"{path}: grid key {key!r} needs a non-empty list of values, got {values!r}")
    keys = list(grid)
    entries = []
    for combination in itertools.product(*(grid[k] for k in keys)):
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, combination))
        entries.append((label, merge(*(nest(k, v) for k, v in zip(keys, combination)))))
    return entries


def cross(first: list[tuple[str, dict]], second: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """All pairs of two entry lists, labels joined, tables merged."""
    return [(f"{a}, {b}", merge(x, y)) for (a, x), (b, y) in itertools.product(first, second)]


SWEEP_KEYS = {"name", "description", "results", "out", "seeds", "base", "tasks", "variants", "grid", "budget",
              "curve_x", "curve_rows"}
TABLE_LISTS = ("tasks", "variants")  # arrays of tables, [[tasks]]
TEXTS = ("name", "description", "results", "out", "curve_x", "curve_rows")


def check_types(d: dict, path: Path, where: str = "") -> None:
    """The kinds of a sweep document's values: texts, tables, arrays of tables; a UsageError naming the key,
    what it must be and what it is."""
    def refuse(key: str, kind: str, value) -> None:
        raise UsageError(f"{path}: {where}{key} must be {kind}, got {value!r}")

    for key, value in d.items():
        if key in TEXTS and not isinstance(value, str):
            refuse(key, "a string", value)
        if key in ("base", "grid", "budget") and not isinstance(value, dict):
            refuse(key, "a table", value)
        if key == "base" and not all(isinstance(v, dict) for v in value.values()):
            refuse(key, "a table of tables ([base.task], [base.model], [base.train])", value)
        if key in TABLE_LISTS and not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
            refuse(key, f"an array of tables ([[{key}]])", value)
    for entry in [e for key in TABLE_LISTS for e in d.get(key, []) if isinstance(e, dict)]:
        for section in ("task", "model", "train"):
            if section in entry and not isinstance(entry[section], dict):
                refuse(f"[[...]] {section}", "a table", entry[section])


def with_budget(d: dict, budget: str | None, path: Path) -> dict:
    """The sweep document with its ``[budget.NAME]`` table merged over it (tables key by key, lists
    replaced), written to its own ``out`` and results page unless the budget names them."""
    budgets = d.pop("budget", {})
    if not isinstance(budgets, dict):
        raise UsageError(f"{path}: budget must hold tables such as [budget.small], got {budgets!r}")
    for name, table in budgets.items():  # every budget, chosen or not: a typo shows on the first try
        if not isinstance(table, dict):
            raise UsageError(f"{path}: [budget.{name}] must be a table, got {table!r}")
        if unknown_keys := set(table) - (SWEEP_KEYS - {"budget"}):
            raise UsageError(f"{path}: [budget.{name}] has unknown keys {sorted(unknown_keys)}; allowed: "
                             f"{sorted(SWEEP_KEYS - {'budget'})}")
        check_types(table, path, f"[budget.{name}] ")
    if budget is None:
        return d
    if budget not in budgets:
        raise UsageError(f"{path} has no budget {budget!r}; allowed: {', '.join(sorted(budgets)) or '(none defined)'}")
    out = d.get("out", f"results/{path.stem}")
    results = Path(d.get("results", str(Path(out) / "results.md")))
    d = merge(d, budgets[budget])
    d.setdefault("name", path.stem)
    d["name"] = f"{d['name']} ({budget} budget)"
    if "out" not in budgets[budget]:
        d["out"] = f"{out}-{budget}"
    if "results" not in budgets[budget]:
        d["results"] = str(results.with_name(f"{results.stem}-{budget}{results.suffix}"))
    return d


CURVE_X = {
    "step": "optimisation steps",
    "sequences": "training sequences seen (compares trainers whose steps differ, e.g. MemUP's rollouts)",
}


def regenerate_command(path: Path, budget: str | None = None) -> str:
    """The command that runs (or regenerates) the sweep in ``path`` again: ``longrnn reproduce NAME`` for a
    file of an ``experiments/`` folder (the name is what `reproduce` looks up), else ``longrnn sweep PATH``."""
    command = f"longrnn reproduce {path.stem}" if path.parent.name == "experiments" else f"longrnn sweep {path}"
    return command + (f" --budget {budget}" if budget else "")


def _check_seeds(seeds, path: Path, key: str) -> None:
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                         for s in seeds):
        raise UsageError(f"{path}: {key} must be a list of whole numbers, e.g. [0, 1, 2], got {seeds!r}")
    if len(set(seeds)) != len(seeds):  # one run would be counted as two replicates
        raise UsageError(f"{path}: {key} names a seed twice, {seeds!r}; each seed is one run")


def load_sweep(path: str | Path, budget: str | None = None) -> Sweep:
    """The runs of a sweep file; ``budget`` picks one of its ``[budget.NAME]`` tables (e.g. small, paper)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"sweep file {str(path)!r} does not exist")
    try:
        d = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not valid TOML: {e}") from None
    unknown_keys = set(d) - SWEEP_KEYS
    if unknown_keys:
        raise UsageError(f"{path}: unknown keys {sorted(unknown_keys)}; allowed: {sorted(SWEEP_KEYS)}")
    check_types(d, path)
    d = with_budget(d, budget, path)
    seeds = d.get("seeds", [0])
    _check_seeds(seeds, path, "seeds")
    for key in ("out", "results", "name"):
        if key in d and (not isinstance(d[key], str) or not d[key].strip()):
            raise UsageError(f"{path}: {key} must be a non-empty string, got {d[key]!r}")
    if "results" in d and Path(d["results"]).is_dir():
        raise UsageError(f"{path}: results = {d['results']!r} is a folder; it names the results page, a Markdown "
                         "file (e.g. docs/results/NAME.md)")
    if "out" in d and Path(d["out"]).exists() and not Path(d["out"]).is_dir():
        raise UsageError(f"{path}: out = {d['out']!r} is a file; it names the folder of the run directories")
    base_task = d.get("base", {}).get("task", {})
    tasks = _entries(d, "tasks", path) if "tasks" in d else [(str(base_task.get("name", "adding")), {})]
    grid = grid_entries(d["grid"], path) if "grid" in d else None
    variants = _entries(d, "variants", path) if "variants" in d or grid is None else None
    variants = cross(variants, grid) if variants and grid else variants or grid
    sweep = Sweep(
        name=d.get("name", path.stem),
        description=d.get("description", ""),
        results=d.get("results", str(Path(d.get("out", f"results/{path.stem}")) / "results.md")),
        out=d.get("out", f"results/{path.stem}"),
        seeds=list(seeds),
        task_labels=[label for label, _ in tasks],
        variant_labels=[label for label, _ in variants],
        command=regenerate_command(path, budget),
        curve_x=d.get("curve_x", "step"),
        curve_rows=d.get("curve_rows"),
    )
    if sweep.curve_x not in CURVE_X:
        raise unknown("curve_x", sweep.curve_x, CURVE_X)
    variant_labels = [label for label, _ in variants]
    for kind, labels in (("task", sweep.task_labels), ("variant", variant_labels)):
        doubled = sorted(name for name, n in collections.Counter(map(slug, labels)).items() if n > 1)
        if doubled:  # two entries would share run directories
            raise UsageError(f"{path}: two {kind} labels name the same runs ({', '.join(doubled)}); "
                             "give each a label of its own")
    for task_label, task in tasks:
        per_variant = _per_variant(task.pop("per_variant", {}), variant_labels, task_label, path)
        only = _only_variants(task.pop("variants", variant_labels), variant_labels, task_label, path)
        task_seeds = task.pop("seeds", seeds)
        _check_seeds(task_seeds, path, f"seeds of task {task_label!r}")
        for variant_label, variant in variants:
            if variant_label not in only:
                continue
            for seed in task_seeds:
                name = f"{slug(task_label)}--{slug(variant_label)}--s{seed}"
                table = merge(d.get("base", {}), task, variant, per_variant.get(variant_label, {}),
                              {"train": {"seed": seed}})
                table = substitute(table, "{seq_len}", str(table.get("task", {}).get("seq_len")))
                config = from_dict({**table, "out": sweep.out, "name": name})
                try:  # every run checked before the first one starts (a misspelt key fails here, once)
                    check_ranges(config)
                    check_options(config)
                except UsageError as e:
                    raise UsageError(f"{path}: run {task_label!r} × {variant_label!r}: {e}") from None
                sweep.runs.append(Run(task_label, variant_label, config))
    if sweep.curve_rows is not None:  # a key some run lacks fails now, not when the page is drawn
        try:
            for run in sweep.runs:
                get_key(run.config, sweep.curve_rows)
        except UsageError as e:
            raise UsageError(f"{path}: curve_rows = {sweep.curve_rows!r} names no config key ({e}); "
                             "use a dotted key such as 'model.cell'") from None
    return sweep


FAILED = "failed.json"


def read_failure(run_dir: Path) -> dict | None:
    """The failure record ``failed.json`` of a run a sweep could not finish, or None; a damaged one is a
    `runs.DamagedFile` naming it."""
    failure = run_dir / FAILED
    if not failure.exists():
        return None
    try:
        record = json.loads(failure.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("message"), str):
        raise runs.DamagedFile(f"{failure} is damaged; delete it, or pass --retry-failed to run the run again")
    return record


def _run_one(config: RunConfig, retry_failed: bool = False) -> dict:
    """Train (or resume, or skip) one run; a run that raises is recorded in failed.json, not re-raised.
    A finished run on a dynamical system is then scored as ``longrnn dsr eval`` scores it (once)."""
    from longrnn.training import train
    from longrnn.training.reconstruction import is_reconstruction_task, reconstruct

    run_dir = Path(config.out) / config.run_name()
    failure = run_dir / FAILED
    if not retry_failed and (record := read_failure(run_dir)) is not None:
        return {**record, "status": "failed", "run_dir": str(run_dir)}
    try:
        summary = train(config, resume=(run_dir / runs.CONFIG).is_file(), quiet=True)
        unscored = "reconstruction" not in summary and (run_dir / runs.MODEL).exists()
        if is_reconstruction_task(config.task.name) and config.train.trainer != "memup" and unscored:
            summary["reconstruction"] = reconstruct(run_dir, plots=False)  # the page draws the attractors
    except Exception as e:  # noqa: BLE001 - one broken run must not end the sweep
        record = {"status": "failed", "message": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_json(failure, record)
        return {**record, "run_dir": str(run_dir)}
    failure.unlink(missing_ok=True)
    return summary


def threads_per_job(jobs: int) -> int:
    """The machine's cores divided between ``jobs`` worker processes (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // jobs)


BACKENDS = ("local", "ray")


def check_existing_runs(sweep: Sweep, retry_failed: bool = False) -> None:
    """A UsageError if a run directory the sweep would write or read holds another config's trained run
    (another sweep's with the same ``out``, or this file changed since): neither run may be mixed up with
    the other, nor marked failed in its place. A damaged ``summary.json`` or ``failed.json`` (unless
    ``retry_failed``) is a `runs.DamagedFile` now, once, not a failure recorded for its run."""
    for run in sweep.runs:
        run_dir = Path(run.config.out) / run.config.run_name()
        if runs.is_run(run_dir) and runs.has_trained(run_dir):
            saved = runs.read_config(run_dir)
            if (saved.identity(), saved.train.seed) != (run.config.identity(), run.config.train.seed):
                raise UsageError(f"run directory {str(run_dir)!r} holds a run of another config (another sweep's "
                                 "with the same out, or this file changed since it ran); give this sweep its own "
                                 "out, or move that run away")
        if run_dir.is_dir():
            runs.read_summary(run_dir)
            if not retry_failed:
                read_failure(run_dir)


def check_sweep(sweep: Sweep, retry_failed: bool = False) -> None:
    """Everything `run_sweep` checks before its first run: `check_existing_runs` and `check_builds`."""
    check_existing_runs(sweep, retry_failed)
    check_builds(sweep)


def check_builds(sweep: Sweep) -> None:
    """Every run that has not finished checked as `train` checks it before it begins
    (`longrnn.training.trainer.check_run`: the model as a skeleton on the meta device) before the first run
    starts: a value refused fails the sweep once, naming the run."""
    from longrnn.training.trainer import check_run

    earlier: dict[Path, int] = {}  # run directories before the run checked: their weights come later
    for i, run in enumerate(sweep.runs):
        run_dir = Path(run.config.out) / run.config.run_name()
        if runs.read_summary(run_dir) is None:  # a finished run builds nothing (its source's weights may be gone)
            config = run.config
            if source_run(config, earlier) is not None:  # starts from an earlier run of the sweep
                config = dataclasses.replace(config, train=dataclasses.replace(config.train, init_from=""))
            try:
                check_run(config)
            except UsageError as e:
                raise UsageError(f"sweep {sweep.name!r}: run {run.task_label!r} × {run.variant_label!r}: "
                                 f"{e}") from None
        earlier[run_dir.resolve()] = i


def run_sweep(sweep: Sweep, jobs: int = 1, quiet: bool = False, retry_failed: bool = False,
              backend: str = "local", address: str | None = None, checked: bool = False) -> list[dict]:
    """Run every run of the sweep that has not finished; returns their summaries in sweep order.

    ``backend="local"`` runs them in this process (``jobs=1``) or a pool of ``jobs`` processes;
    ``backend="ray"`` sends each run as a task to the Ray cluster at ``address`` (an existing one;
    ``None`` starts a local one), one CPU per task; the workers write the run directories, so ``out``
    must be on a filesystem they share (it is made absolute here). The progress bar counts runs done
    (finished, skipped or failed) with an ETA, and shows how many failed and how many are running.
    `check_sweep` runs first unless the caller ran it (``checked``).
    """
    check_positive("jobs", jobs)
    if backend not in BACKENDS:
        raise unknown("backend", backend, BACKENDS)
    if not checked:
        check_sweep(sweep, retry_failed)
    configs = [run.config for run in sweep.runs]
    if jobs > 1 or backend == "ray":
        for config in configs:
            config.train.threads = config.train.threads or (1 if backend == "ray" else threads_per_job(jobs))
    logged = [name for name in trackers.TRACKERS if any(name in trackers.parse(c.train.log) for c in configs)]
    trackers.open_sweep(Path(sweep.out), sweep.name, logged)  # the runs' parent in MLflow, their W&B group
    bar = progress(len(configs), f"sweep {sweep.name}", disable=quiet)
    results: list[dict | None] = [None] * len(configs)

    def done(i: int, summary: dict) -> None:
        results[i] = summary
        bar.update(1)
        failed = sum(r is not None and r["status"] == "failed" for r in results)
        bar.set_postfix(failed=failed, running=min(jobs, len(configs) - bar.n))

    if jobs == 1 and backend == "local":
        for i, config in enumerate(configs):
            done(i, _run_one(config, retry_failed))
    for wave in dependency_waves(configs) if jobs > 1 or backend == "ray" else []:  # sources finish first
        if backend == "ray":
            _run_on_ray([configs[i] for i in wave], retry_failed, address, lambda k, s, w=wave: done(w[k], s))
            continue
        context = multiprocessing.get_context("spawn")
        # one process per run: a run's memory is never another's (the trainer also resets the peak count)
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
            futures = {pool.submit(_run_one, configs[i], retry_failed): i for i in wave}
            for future in concurrent.futures.as_completed(futures):
                done(futures[future], future.result())
    bar.close()
    trackers.close_sweep(Path(sweep.out))
    return results


def source_run(config: RunConfig, run_dirs: dict[Path, int]) -> int | None:
    """The index (in ``run_dirs``: resolved run directory -> index) of the sweep run whose weights
    ``config`` starts from (``init_from``: its directory or a file in it), or None."""
    if not config.train.init_from:
        return None
    source = Path(config.train.init_from).resolve()
    return run_dirs.get(source, run_dirs.get(source.parent) if source.suffix else None)


def dependency_waves(configs: list[RunConfig]) -> list[list[int]]:
    """The run indices in waves that run one after another: a run that starts from another run of the
    sweep comes in a later wave than its source (so parallel workers never read a source still training)."""
    run_dirs = {(Path(c.out) / c.run_name()).resolve(): i for i, c in enumerate(configs)}
    depth: dict[int, int] = {}

    def wave_of(i: int, seen: frozenset = frozenset()) -> int:
        if i not in depth:
            source = source_run(configs[i], run_dirs)
            depth[i] = 0 if source is None or source in seen | {i} else 1 + wave_of(source, seen | {i})
        return depth[i]

    waves: dict[int, list[int]] = collections.defaultdict(list)
    for i in range(len(configs)):
        waves[wave_of(i)].append(i)
    return [waves[k] for k in sorted(waves)]


def _run_on_ray(configs: list[RunConfig], retry_failed: bool, address: str | None, done) -> None:
    """Each run as a Ray task (one CPU); ``done(index, summary)`` as each one returns."""
    ray = require_extra("ray", "ray")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, ValueError) as e:  # nobody there; an address ray cannot read
            raise UsageError(f"no Ray cluster at {address!r} (HOST:PORT): {e}") from None
    try:
        task = ray.remote(num_cpus=1)(_run_one)
        for config in configs:
            config.out = str(Path(config.out).resolve())
        pending = {task.remote(config, retry_failed): i for i, config in enumerate(configs)}
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                done(pending.pop(ref), ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()
