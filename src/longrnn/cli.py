"""The ``longrnn`` command: train, eval, dsr eval, list, report, bench, reproduce, sweep, demo.

Flags of ``train`` are the config keys with dashes (see `longrnn.runs.config`); ``--config FILE.toml``
and ``--set key=value`` reach every key. Precedence: defaults < config file < flags < --set.
Bad input prints one line naming the bad value and what is allowed, and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import warnings
from pathlib import Path

from longrnn import console
from longrnn.errors import LongrnnDeprecationWarning, UsageError, check_positive, deprecated, refused_memory

DEMO_RUN = ["--task", "adding", "--seq-len", "100", "--hidden-size", "64", "--steps", "3000",
            "--eval-every", "100", "--lr", "3e-3"]
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)
LEADERBOARD_PAGE = "docs/results/leaderboard.md"
DEMO_CELLS, DEMO_SEEDS = ("lstm", "rnn"), ("0", "1", "2")


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a missing argument, "abc" for an int) as one line, like every other error;
    no abbreviated flags (an abbreviation would slip past the check of a renamed flag and its new name).
    Every negative number is a value, not a flag: ``--lr -inf`` and ``--lr -1e-3`` reach the range check
    (argparse alone knows only ``-1`` and ``-.5``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --lr-warmup is not --lr-warmup-steps: flags are written out
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message):
        command = self.prog.removeprefix("longrnn").strip()
        self.exit(2, f"longrnn: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")


class _RenamedFlag(argparse.Action):
    """The old spelling of a renamed flag, kept for one release: it stores what the new flag stores and
    prints a one-line deprecation message naming the new flag."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated(option_string, self.new)
        setattr(namespace, self.dest, values)
        namespace.__dict__.setdefault("renamed_flags", []).append((option_string, self.new))


ALIASES = [("--jobs", "--workers")]  # two spellings of one flag


def _check_renamed_flags(args, argv: list[str]) -> None:
    """An old flag and its new name, or two spellings of one flag, may not both be given (the last one
    would win unseen)."""
    for first, second in ALIASES:
        given = [flag for flag in (first, second) if any(a == flag or a.startswith(f"{flag}=") for a in argv)]
        if len(given) == 2:
            raise UsageError(f"{first} and {second} are the same setting; give one of them")
    for old, new in getattr(args, "renamed_flags", []):
        if any(arg == new or arg.startswith(f"{new}=") for arg in argv):
            raise UsageError(f"{old} and {new} are the same setting; give only {new}")


def _json_safe(value):
    """``value`` with NaN and infinities as null: JSON has no such numbers, and a reader must not guess."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _print_json(obj) -> None:
    """``--json``: one JSON object on stdout, nothing else there."""
    print(json.dumps(_json_safe(obj), sort_keys=True))


# --- train ---------------------------------------------------------------------------------------
def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    from longrnn.runs.config import RANGES, RENAMED, SECTIONS, RunConfig, field_type, flag_help, flag_name
    from longrnn.runs.trackers import TRACKERS

    defaults = RunConfig()
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"[{section}]")
        for f in dataclasses.fields(cls):
            if f.name == "options":
                continue
            key = f"{section}.{f.name}"
            default = getattr(getattr(defaults, section), f.name)
            kind = field_type(cls, f.name)
            described = f"{said}; " if (said := flag_help(key)) else ""
            described += f"{RANGES[key].text}; " if key in RANGES else ""
            if key == "train.log":
                group.add_argument("--log", dest=key, action="append", choices=TRACKERS, default=argparse.SUPPRESS,
                                   help="mirror the run into an experiment tracker (repeat for several; each an "
                                        "extra: pip install 'longrnn[NAME]'); its files stay beside the run")
            elif kind is bool:
                group.add_argument(f"--{flag_name(key)}", dest=key, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=f"{described}default {default}")
            else:
                group.add_argument(f"--{flag_name(key)}", dest=key, type=kind, default=argparse.SUPPRESS,
                                   metavar=kind.__name__.upper(),
                                   help=described + ("default: the task's or cell's own" if default is None
                                                     else f"default {default}"))
    for old, new in RENAMED.items():
        section, name = new.split(".")
        parser.add_argument(f"--{flag_name(old)}", dest=new, type=field_type(SECTIONS[section], name),
                            default=argparse.SUPPRESS, action=_RenamedFlag, new=f"--{flag_name(new)}")
    parser.add_argument("--out", dest="out", default=argparse.SUPPRESS,
                        help="folder for run directories (default runs)")
    parser.add_argument("--name", dest="name", default=argparse.SUPPRESS,
                        help="run directory name (default: from the config)")
    parser.add_argument("--config", help="a TOML config file (see experiments/)")
    parser.add_argument("--data", default=argparse.SUPPRESS, metavar="FILE",
                        help="tasks sequences and timeseries: your data, a file (stored by its absolute path) or "
                             "aeon:NAME (task.options.data)")
    parser.add_argument("--system", default=argparse.SUPPRESS, metavar="NAME",
                        help="task dysts: the chaotic system, e.g. Rossler (task.options.system; `longrnn list "
                             "systems` names them)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any key, e.g. --set task.permuted=true --set train.clip=0")


def config_from_args(args) -> RunConfig:  # noqa: F821
    """The run's config from parsed ``train`` flags: defaults < --config file < flags < --set. Raises
    UsageError for a bad key or value (each checked where it is set)."""
    from longrnn.runs.config import RunConfig, apply_overrides, leaf_keys, load, set_key

    config = load(args.config) if args.config is not None else RunConfig()  # --config "" names no file
    if vars(args).get("name") is not None and not vars(args)["name"].strip():
        raise UsageError(f"--name must name a single folder, got {vars(args)['name']!r} (leave it out for the "
                         "name made from the config)")
    for key in leaf_keys():
        if key in vars(args):
            set_key(config, key, vars(args)[key])
    if "data" in vars(args):  # a file by its absolute path: the run can be re-scored from any folder
        config.task.options["data"] = args.data if args.data.startswith("aeon:") or not args.data.strip() \
            else str(Path(args.data).resolve())
    if "system" in vars(args):
        config.task.options["system"] = args.system
    return apply_overrides(config, args.set)


def _print_result(summary: dict, config) -> None:
    from longrnn.reporting.formatting import length

    metric = summary["main_metric"]
    val = (summary["validation"] or {}).get(metric)
    test = (summary["test"] or {}).get(metric)
    base = summary["baseline"].get(metric)
    expected = summary["expected_baseline"].get(metric)

    def fmt(v):
        return "—" if v is None else f"{v:.4g}"

    if "baselines" in summary:  # a user's data: both predictors without history (tasks/sequences.py)
        named = ", ".join(f"{name} {fmt(m.get(metric))}" for name, m in summary["baselines"].items())
        baseline = f"memoryless baselines on the test set: {named}"
    else:
        baseline = f"memoryless baseline {fmt(base)} on the test set (expected {fmt(expected)})"
    print(f"{summary['status']}: {summary['task']} T={length(config, summary)} {summary['cell']}"
          f" after {summary['steps']} steps"
          f" ({summary['wall_time_s']:.0f} s) — {metric}: validation {fmt(val)}, test {fmt(test)}, {baseline}")
    print(f"run directory: {summary['run_dir']}")


def cmd_train(args) -> int:
    from longrnn.training import train

    config = config_from_args(args)
    summary = train(config, resume=args.resume, quiet=args.quiet)
    if "rank" in summary:  # a --ddp process other than the first: process 0 reports
        return 1 if summary["status"] == "diverged" else 0
    _print_json(summary) if args.json else _print_result(summary, config)
    return 1 if summary["status"] == "diverged" else 0


# --- eval ----------------------------------------------------------------------------------------
def _set_threads(threads: int) -> None:
    """``--threads N`` as ``train.threads`` means it (the same range): torch.set_num_threads(N); 0 keeps
    torch's default."""
    _check_threads(threads, minimum=0)
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_eval(args) -> int:
    from longrnn import runs
    from longrnn.runs.config import apply_overrides
    from longrnn.tasks import task_options
    from longrnn.training import best_model, build_task, evaluate

    _set_threads(args.threads)
    lengths = args.seq_len or [None]
    for n in args.seq_len or []:
        check_positive("--seq-len", n)
    check_positive("--chunk-len", args.chunk_len)
    if args.set_size is not None:
        check_positive("--set-size", args.set_size)
    if args.plot and len(lengths) < 2:
        raise UsageError("--plot draws the score against the length: give --seq-len two lengths or more")
    for item in args.set:  # the task at evaluation, e.g. a fixed delay for a run trained on variable ones
        if not item.startswith("task.options."):
            raise UsageError(f"eval --set changes task options only (task.options.KEY=VALUE), got {item!r}")
    found = runs.find_runs(args.runs)
    results, skipped = [], []
    for run_dir in found:
        config = apply_overrides(runs.read_config(run_dir), args.set)
        if args.seq_len is not None and "seq_len" not in task_options(config.task.name):
            raise UsageError(f"--seq-len: task {config.task.name!r} of run {str(run_dir)!r} has no seq_len")
        if args.set_size is not None:  # fixed sets of this many sequences (the same ones for every run)
            if "validation_size" not in task_options(config.task.name):
                raise UsageError(f"--set-size: task {config.task.name!r} of run {str(run_dir)!r} has fixed sets "
                                 "of its own size")
            config.task.options.update(validation_size=args.set_size, test_size=args.set_size)
        try:
            model = best_model(config, build_task(config), run_dir)
        except UsageError as e:  # no weights (diverged before its first evaluation) or damaged ones
            if len(found) == 1:
                raise
            skipped.append(str(e))
            continue
        for seq_len in lengths:
            if seq_len is not None:  # length generalisation: the fixed sets are drawn at this length
                config.task.seq_len = seq_len
            task = build_task(config)
            result = {"run": str(run_dir), "seq_len": config.task.seq_len, "baseline": task.baseline()}
            for split in args.split:
                result[split] = evaluate(model, task, split, config.train.eval_batch_size,
                                         chunk_len=args.chunk_len, quiet=args.quiet)
            results.append(result)
            if not args.json:
                print(json.dumps(result, indent=2), flush=True)
    if args.json:
        _print_json({"runs": results, "not_scored": skipped})
    elif len(lengths) > 1 and results:
        _length_outputs(results, args, build_task(config))
    for reason in skipped:  # the others are scored; these are named where a script or a person looks
        print(f"longrnn: warning: not scored: {reason}", file=sys.stderr)
    return 1 if skipped else 0


def _length_outputs(results: list[dict], args, task) -> None:
    """The length ladder's table on stdout (the last split asked, the task's main metric), and its plot."""
    from longrnn.reporting.length import length_plot, length_table

    split = args.split[-1]
    print(length_table(results, split, task.main_metric), end="")
    if args.plot:
        print(f"plot: {length_plot(results, split, task.main_metric, args.plot)}", file=sys.stderr)


# --- dsr eval ------------------------------------------------------------------------------------
def cmd_dsr_eval(args) -> int:
    from longrnn import runs
    from longrnn.training.reconstruction import reconstruct

    _set_threads(args.threads)
    check_positive("--pe-steps", args.pe_steps)
    if not (math.isfinite(args.smoothing) and args.smoothing >= 0):
        raise UsageError(f"--smoothing must be a finite number >= 0 (bins; 0: none), got {args.smoothing!r}")
    for run_dir in runs.find_runs(args.runs):
        result = reconstruct(run_dir, args.burn_in, args.pe_steps, args.smoothing, plots=not args.no_plots)
        print(json.dumps({"run": str(run_dir), **result}, indent=2))
    return 0


# --- list ----------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from longrnn import cells, tasks
    from longrnn.cells import external
    from longrnn.functional.gates import GATES, refine_gate
    from longrnn.training.bptt import TRAINERS
    from longrnn.training.optim import OPTIMIZERS, SCHEDULES

    gate_functions = {**GATES, "refine": refine_gate}
    sections = {"cells": {**cells.available(), **external.available()}, "tasks": tasks.available(),
                "trainers": TRAINERS,
                "optimizers": OPTIMIZERS, "schedules": SCHEDULES,
                "gates": {name: fn.__doc__.strip().splitlines()[0] for name, fn in gate_functions.items()}}
    if args.what == "systems":  # dysts's catalogue, listed only when asked (it needs the extra, ~6 s)
        from longrnn.dsr.dysts_systems import reconstructible_flows

        sections["systems"] = {name: f"{flow.dimension}-D, λ_max {flow.maximum_lyapunov_estimated:.3g}"
                               for name, flow in reconstructible_flows().items()}
    chosen = [args.what] if args.what else list(sections)
    for name in chosen:
        if name not in sections:
            from longrnn.errors import unknown

            raise unknown("list", name, [*sections, "systems"])
        print(f"{name}:")
        width = max(map(len, sections[name]))
        for key, desc in sections[name].items():
            print(f"  {key:<{width}}  {desc}")
    return 0


# --- report --------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    if args.leaderboard and (args.out or args.html or args.json):
        raise UsageError("--leaderboard writes the page --page names; --out, --html and --json are for a report")
    if not args.leaderboard and args.page != LEADERBOARD_PAGE:
        raise UsageError("--page names the leaderboard page; give it with --leaderboard")
    if args.leaderboard:
        from longrnn.reporting.leaderboard import write_leaderboard

        page = write_leaderboard(args.runs or ["results"], args.page)
        print(f"leaderboard written: {page}")
        return 0
    if not args.runs:
        raise UsageError("give run directories (or folders holding them), e.g. longrnn report runs/")
    from longrnn import runs
    from longrnn.reporting.report import load_runs, report_folder, summarize, write_report

    folder = runs.make_folder(report_folder(args.runs, args.out), "--out", "the report's folder")
    damaged: list[str] = []
    records = load_runs(args.runs, damaged)  # read once, for the report and for --json
    text = write_report(records, damaged, folder, plots=not args.no_plots, html=args.html)
    if args.json:
        runs_out = [{"run": str(r["dir"]), "seed": r["config"].train.seed, "summary": r["summary"]} for r in records]
        _print_json({"configurations": summarize(records), "runs": runs_out, "damaged": damaged})
    else:
        print(text, end="")
    for reason in damaged:  # reported with the rest too, and here where a script or a person looks for trouble
        print(f"longrnn: warning: not read: {reason}", file=sys.stderr)
    return 1 if damaged else 0  # the report is written, but it is not the whole folder


# --- bench ---------------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    _check_threads(args.threads, minimum=1)
    import torch

    from longrnn.bench.speed import cpu_name, speed, speed_table

    rows = speed(args.cells, args.batch_size, args.seq_len, args.hidden_size, args.input_size,
                 args.threads, args.warmup_rounds, args.repeats, quiet=args.quiet, device=args.device)
    machine = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else cpu_name()
    setup = (f"B={args.batch_size}, T={args.seq_len}, H={args.hidden_size}, I={args.input_size}, "
             f"{args.threads} thread(s), median of {args.repeats} after {args.warmup_rounds} warm-up rounds; "
             f"torch {torch.__version__}, {machine}")
    _print_json({"setup": setup, "rows": rows}) if args.json else print(speed_table(rows, setup), end="")
    return 0


def _check_threads(threads: int, minimum: int) -> None:
    """``--threads`` of a command within train.threads' bound; a benchmark needs at least 1 (it times a
    fixed number), eval takes 0 (torch's own choice) too."""
    from longrnn.runs.config import RANGES

    if threads < minimum or not RANGES["train.threads"].contains(threads):
        raise UsageError(f"--threads must be in [{minimum}, {RANGES['train.threads'].high}], got {threads!r}")


def cmd_bench_convexp(args) -> int:
    _check_threads(args.threads, minimum=1)
    import torch

    from longrnn.bench.convexp import convexp_scaling, scaling_table
    from longrnn.bench.speed import cpu_name

    rows = convexp_scaling(args.sizes, args.channels, args.batch_size, args.complex_state, args.stencil,
                           args.dense_max, args.threads, args.warmup_rounds, args.repeats, quiet=args.quiet)
    kind = "complex (unitary)" if args.complex_state else "real (orthogonal)"
    setup = (f"square lattices, c={args.channels}, {kind}, stencil {args.stencil}, B={args.batch_size}, dense "
             f"variants up to {args.dense_max} units, {args.threads} thread(s), median of {args.repeats} after "
             f"{args.warmup_rounds} warm-up rounds; torch {torch.__version__}, {cpu_name()}")
    _print_json({"setup": setup, "rows": rows}) if args.json else print(scaling_table(rows, setup), end="")
    return 0


def cmd_bench_memory(args) -> int:
    import torch

    from longrnn import runs
    from longrnn.bench.memory import memory, memory_plot, memory_table
    from longrnn.bench.speed import cpu_name
    from longrnn.runs.config import RunConfig, apply_overrides, check_ranges, load, set_key
    from longrnn.training.build import build_device

    config = load(args.config) if args.config else RunConfig()
    task = args.task or (None if args.config else "copy")
    for key, value in (("task.name", task), ("model.cell", args.cell), ("model.hidden_size", args.hidden_size),
                       ("train.batch_size", args.batch_size), ("train.threads", args.threads),
                       ("train.device", args.device)):
        if value is not None:
            set_key(config, key, value)
    apply_overrides(config, args.set)
    for key, flag in (("train.steps", "--steps"), ("task.seq_len", "--seq-len"), ("train.trainer", "--trainer")):
        if any(item.split("=", 1)[0].strip() == key for item in args.set):
            raise UsageError(f"bench memory sets {key} itself; give {flag} instead of --set {key}")
    check_ranges(config)
    build_device(config.train.device)
    if args.out:  # before measuring, not after
        runs.make_folder(args.out, "--out", "the benchmark's folder")
    rows = memory(config, args.trainer, args.seq_len, args.steps, quiet=args.quiet, evaluation=args.evaluation)
    m, t = config.model, config.train
    scored = f" and of scoring {config.task.options.get('validation_size', 'the')} validation sequences" \
        if args.evaluation else ""
    setup = (f"Peak memory of {args.steps} training steps{scored}, task {config.task.name}, {m.cell} H={m.hidden_size} "
             f"x{m.layers}, B={t.batch_size}, tbptt_len={t.tbptt_len}, memup rollout={t.memup_rollout} "
             f"K={t.memup_targets} f={t.memup_predict_every}; device {t.device}, torch {torch.__version__}, "
             f"{cpu_name()}; one child process per entry")
    table = memory_table(rows, setup)
    if not args.json:
        print(table, end="")
    if args.out:
        out = Path(args.out)
        (out / "memory.md").write_text(table)
        (out / "memory.json").write_text(json.dumps(rows, indent=1))
        if not args.no_plots:
            memory_plot(rows, out / "memory.png")
        if not args.json:
            print(f"written: {out / 'memory.md'}, memory.json" + ("" if args.no_plots else ", memory.png"))
    if args.json:
        _print_json({"setup": setup, "rows": rows})
    return 0


# --- reproduce -----------------------------------------------------------------------------------------
def experiment_file(name: str) -> Path:
    """A sweep file: a path as given, else experiments/NAME.toml here or beside the package's source tree."""
    candidates = [Path(name), Path("experiments") / f"{name}.toml",
                  Path(__file__).resolve().parents[2] / "experiments" / f"{name}.toml"]
    for path in candidates if name.strip() else []:
        if path.is_file():
            return path
    available = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "experiments").glob("*.toml"))
    raise UsageError(f"no experiment {name!r}; allowed: {', '.join(available) or '(none found)'} or a TOML path")


def cmd_reproduce(args) -> int:
    """`longrnn reproduce NAME` and `longrnn sweep FILE`: run what has not finished, then write the page."""
    from longrnn import runs
    from longrnn.experiment.sweep import check_existing_runs, check_sweep, load_sweep, run_sweep
    from longrnn.reporting.results_page import write_results_page

    check_positive("--jobs", args.jobs)
    if args.address is not None and args.backend != "ray":
        raise UsageError("--address names a Ray cluster; give it with --backend ray")
    sweep = load_sweep(experiment_file(args.name if args.command == "reproduce" else args.file), budget=args.budget)
    for run in sweep.runs if args.log else []:  # mirrors the runs; what they compute (their identity) is unchanged
        run.config.train.log = ",".join(args.log)
    if args.report_only:
        check_existing_runs(sweep)  # not a page of another config's runs, nor of damaged ones
    else:
        check_sweep(sweep, args.retry_failed)  # before the first line: a refused sweep prints its error alone
    code, failed = 0, []
    if not args.report_only:
        if not args.json:
            print(f"{sweep.name}: {len(sweep.runs)} runs into {sweep.out} (finished ones are skipped); results "
                  f"page {sweep.results}")
        summaries = run_sweep(sweep, jobs=args.jobs, quiet=args.quiet, retry_failed=args.retry_failed,
                              backend=args.backend, address=args.address, checked=True)
        failed = [s for s in summaries if s["status"] == "failed"]
        for s in failed:
            print(f"failed: {s['run_dir']}: {s['message']}", file=sys.stderr)
        if failed:
            print(f"{len(failed)} of {len(summaries)} runs failed (see failed.json in their run directories; "
                  "--retry-failed runs them again)", file=sys.stderr)
            code = 1
    page = write_results_page(sweep, plots=not args.no_plots)
    if args.json:
        finished = sum(runs.read_summary(Path(r.config.out) / r.config.run_name()) is not None for r in sweep.runs)
        _print_json({"sweep": sweep.name, "runs": len(sweep.runs), "finished": finished, "page": str(page),
                     "failed": [{"run": s["run_dir"], "message": s["message"]} for s in failed]})
    else:
        print(f"results page written: {page}")
    return code


# --- demo ----------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from longrnn.reporting.report import report

    out = args.out or tempfile.mkdtemp(prefix="longrnn-demo-")
    print("demo: the adding problem at T=100 on the CPU, an LSTM against a plain tanh RNN, three seeds each;"
          " this takes a few minutes.")
    code = 0
    for cell in DEMO_CELLS:
        for seed in DEMO_SEEDS:
            flags = ["train", *DEMO_RUN, "--cell", cell, "--seed", seed, "--out", out]
            code = max(code, cmd_train(build_parser().parse_args(flags + (["--quiet"] if args.quiet else []))))
    print()
    print(report([out], out), end="")
    print(f"\nreport, table and curves written to {out}")
    return code


def build_parser() -> argparse.ArgumentParser:
    """The ``longrnn`` argument parser, one subcommand per ``cmd_*`` function (each sets ``func``)."""
    from longrnn.runs.trackers import TRACKERS

    parser = _Parser(prog="longrnn", description="Recurrent networks for very long-term dependencies.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one model on one task, writing a run directory")
    _add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue the run directory from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score a run's best model on its validation and test sets")
    p.add_argument("runs", nargs="+", help="run directories, or folders holding them")
    p.add_argument("--split", nargs="+", choices=["validation", "test"], default=["validation", "test"])
    p.add_argument("--seq-len", type=int, nargs="+", default=None, metavar="N",
                   help="score on the task at this length instead of the run's (length generalisation); several "
                        "lengths give a table of the main metric by length")
    p.add_argument("--set-size", type=int, default=None, metavar="N",
                   help="draw the fixed sets with N sequences (default: the run's); the same N sequences for every "
                        "run, quicker at long lengths")
    p.add_argument("--chunk-len", type=int, default=4096, metavar="N",
                   help="steps run at once on a set too large to hold (it is read chunk by chunk; default 4096)")
    p.add_argument("--set", action="append", default=[], metavar="task.options.KEY=VALUE",
                   help="score on the task with this option changed (e.g. task.options.variable_delay=false)")
    p.add_argument("--plot", metavar="PATH", help="with several --seq-len: the main metric against the length (.png)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own choice, as train)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on a set read chunk by chunk")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("dsr", help="dynamical-systems reconstruction: evaluate a trained model")
    dsr = p.add_subparsers(dest="dsr", required=True)
    s = dsr.add_parser("eval", help="D_stsp, D_H and PE(n) of free-running generation into summary.json, and plots")
    s.add_argument("runs", nargs="+",
                   help="run directories (lorenz63, bursting, hindmarsh_rose, dysts, timeseries), or folders "
                        "holding them")
    s.add_argument("--burn-in", type=int, default=50,
                   help="test samples teacher-forced before free running (default 50)")
    s.add_argument("--warmup", dest="burn_in", type=int, action=_RenamedFlag, new="--burn-in")
    s.add_argument("--pe-steps", type=int, default=20, help="n of the n-step prediction error (default 20)")
    s.add_argument("--smoothing", type=float, default=20.0, help="power-spectrum smoothing in bins (default 20)")
    s.add_argument("--no-plots", action="store_true", help="skip attractor.png, series.png, spectra.png")
    s.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's own choice, as train)")
    s.set_defaults(func=cmd_dsr_eval)

    p = sub.add_parser("list", help="cells, tasks, trainers, optimizers, schedules, each with a description")
    p.add_argument("what", nargs="?", help="one section only, e.g. cells")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("report", help="Markdown + CSV tables and learning curves from run directories (exit "
                                      "status 1 when some run could not be read: it is named, the rest reported)")
    p.add_argument("runs", nargs="*", help="run directories, or folders holding them (leaderboard default: results)")
    p.add_argument("--out", help="where to write report.md, report.csv, curves-TASK-TLEN.png (default: the first "
                                 "folder)")
    p.add_argument("--leaderboard", action="store_true",
                   help="write the leaderboard page instead: every method per task and length, selected on validation")
    p.add_argument("--page", default=LEADERBOARD_PAGE, help="the leaderboard page to (re)write")
    p.add_argument("--no-plots", action="store_true", help="skip the curves' pictures")
    p.add_argument("--html", action="store_true",
                   help="also write report.html: sortable tables and interactive curves, in one self-contained file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="speed (ratios against torch.nn.LSTM) and memory benchmarks")
    bench = p.add_subparsers(dest="bench", required=True)
    s = bench.add_parser("speed", help="one training step (forward + backward) of each cell vs torch.nn.LSTM")
    s.add_argument("--cells", nargs="+", action="extend", help="cells to time (default: all)")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seq-len", type=int, default=1000)
    s.add_argument("--hidden-size", type=int, default=128)
    s.add_argument("--input-size", type=int, default=32)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--warmup-rounds", type=int, default=2, help="untimed rounds first (default 2)")
    s.add_argument("--warmup", dest="warmup_rounds", type=int, action=_RenamedFlag, new="--warmup-rounds")
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--device", default="cpu", help="cpu or cuda[:N] (the reference is then cuDNN's LSTM)")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    s.set_defaults(func=cmd_bench)
    s = bench.add_parser("memory", help="peak memory of training vs sequence length, per trainer (child processes)")
    s.add_argument("--trainer", nargs="+", default=["bptt", "tbptt", "memup"], help="bptt, tbptt, memup (default all)")
    s.add_argument("--seq-len", nargs="+", type=int, default=[1000, 2000, 4000, 8000])
    s.add_argument("--steps", type=int, default=3, help="training steps per measurement (default 3)")
    s.add_argument("--evaluation", action="store_true",
                   help="also measure scoring the validation set at each length (a row 'evaluation')")
    s.add_argument("--task", help="default copy (or the --config file's)")
    s.add_argument("--cell")
    s.add_argument("--hidden-size", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--device")
    s.add_argument("--config", help="a TOML config for everything else")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. train.memup_rollout=100")
    s.add_argument("--out", help="folder for memory.md, memory.json and memory.png")
    s.add_argument("--no-plots", action="store_true")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    s.set_defaults(func=cmd_bench_memory)

    s = bench.add_parser("convexp", help="conv_unitary kernel + one step vs lattice size, dense expm and a dense "
                                         "orthogonal RNN (ratios)")
    s.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256], help="lattice sides (s x s)")
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--complex-state", action="store_true", help="unitary (complex) instead of orthogonal (real)")
    s.add_argument("--stencil", type=int, default=3, help="generator stencil (odd; 0: the whole lattice)")
    s.add_argument("--dense-max", type=int, default=2048, help="largest state (units) for the dense variants")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--warmup-rounds", type=int, default=1, help="untimed rounds first (default 1)")
    s.add_argument("--warmup", dest="warmup_rounds", type=int, action=_RenamedFlag, new="--warmup-rounds")
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    s.set_defaults(func=cmd_bench_convexp)

    for command, target, text in (
        ("reproduce", "name", "run a named experiment grid (experiments/NAME.toml) and write its results page"),
        ("sweep", "file", "run a sweep TOML file (tasks x variants x [grid] x seeds) and write its results page"),
    ):
        p = sub.add_parser(command, help=text)
        p.add_argument(target, metavar=target.upper(), help="experiment name, e.g. fastgate, or a sweep TOML file")
        p.add_argument("--jobs", "--workers", dest="jobs", type=int, default=1,
                       help="runs in parallel; the cores are divided between them (default 1)")
        p.add_argument("--budget", help="one of the file's [budget.NAME] tables, e.g. small (minutes) or paper")
        p.add_argument("--retry-failed", action="store_true", help="run again the runs that failed before")
        p.add_argument("--backend", default="local", choices=("local", "ray"),
                       help="local (a process pool) or ray (tasks on a Ray cluster)")
        p.add_argument("--address", help="with --backend ray: the cluster's HOST:PORT (default: start a local one)")
        p.add_argument("--report-only", action="store_true", help="only regenerate the results page from finished runs")
        p.add_argument("--log", action="append", choices=TRACKERS, default=[],
                       help="mirror every run into an experiment tracker, each a child of the sweep's (repeatable)")
        p.add_argument("--no-plots", action="store_true")
        p.add_argument("--quiet", action="store_true")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
        p.set_defaults(func=cmd_reproduce, name=None)

    p = sub.add_parser("demo", help="a real training run on the CPU (a few minutes) and its results table")
    p.add_argument("--out", help="folder for the run (default: a new temporary folder)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def _resource_error(e: BaseException) -> str | None:
    """One line for what the machine refused: memory a size asked for, a path that cannot be read or
    written. None for anything else (a bug, which keeps its traceback)."""
    if (size := refused_memory(e)) is not None:
        return (f"not enough memory: the sizes given ask for {size or 'more than there is'} at once; use "
                "smaller lengths, batches, sets or widths")
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.strerror or type(e).__name__}: {e.filename}"
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Deprecation messages and user warnings as one line, like errors; other warnings as Python prints them."""
    if issubclass(category, (LongrnnDeprecationWarning, UserWarning)):  # longrnn's own remarks to a user
        console.notice(str(message).splitlines()[0])
    else:
        warnings._showwarnmsg_impl(warnings.WarningMessage(message, category, filename, lineno, file, line))


def main(argv=None) -> int:
    """Run the command ``argv`` (default sys.argv[1:]); returns the exit status: 0 done, 1 done but a run
    diverged, failed or could not be read (named on stderr), 2 bad input (one line on stderr), 130 interrupted."""
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    console.hold_notices()  # printed when work begins or ends; a refused command prints its error alone
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help (0), or a parse error already printed as one line (2)
            if e.code:
                console.drop_notices()
            return e.code
        _check_renamed_flags(args, argv)
        return args.func(args)
    except UsageError as e:
        console.drop_notices()
        print(f"longrnn: error: {e}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError, OSError) as e:
        if (message := _resource_error(e)) is None:
            raise
        console.drop_notices()
        print(f"longrnn: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("longrnn: interrupted; a train run continues with the same command plus --resume", file=sys.stderr)
        return 130
    finally:
        console.release_notices()
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
