"""The training loop: one function, `train(config)`, read top to bottom.

Each step draws a fresh batch from the task's seeded generator, computes the (full or truncated)
BPTT loss, clips the gradient norm and takes an optimizer step. Every ``eval_every`` steps it scores
the validation set, keeps the best weights in ``model.pt`` and writes a full checkpoint (model,
optimizer, schedule and every random-number state) so that ``--resume`` continues bit-for-bit where
the last checkpoint left off. A non-finite loss or gradient stops the run, which is recorded as
``diverged`` in ``summary.json``. With ``--warmup`` the recurrent layers are first warmed up
(`longrnn.training.warmup_phase`); with ``--vaa`` (or ``--warmup``) the reachable multistability VAA is
logged at initialisation and after warm-up (step-0 records with a ``phase``), with ``--vaa`` also at
every evaluation. At the end the best-on-validation weights are scored on the test
set, which is read only then. With ``--log`` every metrics record and the summary also go to
TensorBoard, MLflow or W&B (`longrnn.runs.trackers`); metrics.jsonl stays the record.
"""

from __future__ import annotations

import contextlib
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from longrnn import runs
from longrnn._version import __version__
from longrnn.cells.graphs import check_graph_device
from longrnn.cells.kernel_sequences import KERNEL_ENGINES, check_kernel_device
from longrnn.console import progress as progress_bar
from longrnn.errors import UsageError, unknown
from longrnn.methods.diagnostics import gate_statistics
from longrnn.methods.regularizers import PLRNN_ONLY, REG_SCHEMES, REGULARIZERS, SCHEMED, model_penalty
from longrnn.runs import trackers
from longrnn.runs.config import RunConfig, TrainConfig, check_ranges, to_toml
from longrnn.streams import stream
from longrnn.training.bptt import TRAINERS, batch_loss
from longrnn.training.build import (
    build_device,
    build_model,
    build_task,
    check_data,
    check_fits,
    check_options,
    record_data,
)
from longrnn.training.curriculum import Curriculum, parse_curriculum
from longrnn.training.distributed import Workers, parameter_checksums, start_workers
from longrnn.training.evaluate import evaluate, first_fixed_sequences
from longrnn.training.init_from import load_initial_weights, weights_file
from longrnn.training.length_test import check_test_lengths, test_at_lengths
from longrnn.training.memup import MemUP, check_settings
from longrnn.training.memup_schedule import MEMUP_OFFICIAL_KEYS, build_memup, check_schedule
from longrnn.training.optim import make_optimizer, make_schedule
from longrnn.training.teacher_forcing import check_task as check_teacher_forcing_task
from longrnn.training.warmup_phase import measure as measure_vaa
from longrnn.training.warmup_phase import measure_on_training_batches as measure_vaa_on_training_batches
from longrnn.training.warmup_phase import warm_up_before_training

DIAGNOSTIC_SEQUENCES = 64  # validation sequences the gate diagnostics look at
DIAGNOSTIC_STEPS = 4096  # their first steps (the diagnostics keep every step's state: not a million of them)


def _finished(config: RunConfig) -> bool:
    """Whether the run directory of ``config`` holds a finished run (its summary): resuming it trains
    nothing, so what only a start needs (the weights of ``init_from``) need not be there."""
    return runs.read_summary(Path(config.out) / config.run_name()) is not None


def _check(config: RunConfig, resume: bool = False) -> None:
    check_ranges(config)  # every numeric key in its range (runs/config.py RANGES)
    t = config.train
    if t.trainer not in TRAINERS:
        raise unknown("trainer", t.trainer, TRAINERS)
    if t.reg not in REGULARIZERS:
        raise unknown("reg", t.reg, REGULARIZERS)
    if t.reg_scheme not in REG_SCHEMES:
        raise unknown("reg_scheme", t.reg_scheme, REG_SCHEMES)
    check_settings(t)  # the memup_* keys, whatever the trainer: a misspelt value is never stored unseen
    check_schedule(t)
    trackers.check(t.log)  # known names, extras installed
    if t.init_from and not (resume and _finished(config)):
        weights_file(t.init_from)  # a missing source fails before the run directory is made
    parse_curriculum(t.curriculum)
    check_test_lengths(config)
    check_options(config)  # task and cell options, before anything is built
    if config.model.engine in KERNEL_ENGINES:  # the kernels' device and needs, before the run directory is made
        check_kernel_device(config.model.engine, config.train.device)
    if config.model.engine == "graph":
        check_graph_device(config.train.device)
    defaults = TrainConfig()
    for key, used, where in (("momentum", t.optimizer == "sgd", f"optimizer 'sgd'; this run's is {t.optimizer!r}"),
                             ("tf_interval", t.trainer == "teacher_forcing", f"trainer 'teacher_forcing'; this "
                              f"run's is {t.trainer!r}"),
                             ("tf_alpha", t.trainer == "teacher_forcing", f"trainer 'teacher_forcing'; this run's "
                              f"is {t.trainer!r}"),
                             ("vaa_batches", t.vaa, "--vaa (VAA at every evaluation); this run measures none"),
                             ("reg_scheme", t.reg in SCHEMED, f"--reg mar or l2; this run's reg is {t.reg!r}"),
                             ("tau_c", t.reg in SCHEMED, f"--reg mar or l2; this run's reg is {t.reg!r}"),
                             ("tau", t.reg != "none", "a penalty (--reg); this run has none"),
                             ("reg_fraction", t.reg in PLRNN_ONLY, f"--reg mar, l2 or l4; this run's reg is {t.reg!r}"),
                             *((key, t.memup_schedule != "joint", f"memup_schedule 'alternating'; this run's is "
                                f"{t.memup_schedule!r}") for key in ("memup_pretrain_steps", "memup_phase_steps")),
                             ("memup_resample_every", t.memup_temperature > 0 and t.memup_selection == "future",
                              "sampled future targets (memup_temperature > 0, memup_selection 'future')"),
                             *((key, t.trainer == "memup", f"trainer 'memup'; this run's is {t.trainer!r}")
                               for key in MEMUP_OFFICIAL_KEYS)):
        if not used and getattr(t, key) != getattr(defaults, key):  # a setting that would be ignored unseen
            raise UsageError(f"train.{key} = {getattr(t, key)!r} applies to {where}")
    if t.trainer == "memup" and not config.model.readout_bias:
        raise UsageError("model.readout_bias = false applies to the model's linear readout; under trainer 'memup' "
                         "the MemUP predictor reads out")
    if t.trainer == "memup" and t.memup_schedule == "alternating" and t.memup_pretrain_steps >= t.steps:
        raise UsageError(f"train.memup_pretrain_steps ({t.memup_pretrain_steps}) must be below train.steps "
                         f"({t.steps}): pre-training alone would leave the memory untrained")


def _check_task(config: RunConfig, task, curriculum: Curriculum | None = None) -> None:
    """What the trainer names needs of the task: next-step targets (teacher forcing), enough steps for
    MemUP's targets and, for its ``curriculum``'s stages too (built here when not given), settings that a
    streamed batch can honour. Every trainer takes sequences of different lengths."""
    t = config.train
    if t.trainer == "teacher_forcing":
        check_teacher_forcing_task(task)
    if t.trainer == "memup":
        MemUP.check_task(t, task, (curriculum or Curriculum(config, task)).stage_tasks)


def check_run(config: RunConfig) -> None:
    """Everything `train` checks before it makes a run directory, without drawing data or allocating:
    the config, the device, the task, the trainer's needs of it, and the model built as a skeleton on
    torch's meta device (its constructors' checks, `check_fits`, the regulariser's cell). A sweep runs
    this for every run before its first one starts. An initialiser that cannot run on meta tensors (one
    that reads a value, as the orthogonal and PLRNN cells' do) ends the model's part there; the real
    build checks the rest."""
    _check(config)
    t = config.train
    device = build_device(t.device)
    task = build_task(config)
    _check_task(config, task)
    try:
        with torch.device("meta"):
            model = build_model(config, task)
    except (RuntimeError, NotImplementedError):  # meta tensors hold no values to read
        return
    check_fits(config, task, model, device)
    model_penalty(model, t.reg, t.tau, t.reg_fraction, t.reg_scheme, t.tau_c)


def _reset_peak_memory(device: torch.device) -> None:
    """Start this run's peak-memory count afresh, so that runs sharing a process (a sweep with one job,
    a Ray worker, the Python API) each report their own peak. On Linux, writing 5 to clear_refs resets
    the process's peak resident set size (VmHWM); elsewhere the count is the process's since it started."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_memory_mb(device: torch.device) -> float:
    """Peak memory since `_reset_peak_memory`: allocated GPU memory, or the resident set size (VmHWM)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the process's lifetime peak


def _versions() -> dict:
    return {
        "longrnn": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train(config: RunConfig, resume: bool = False, quiet: bool = False) -> dict:
    """Train as ``config`` says, write the run directory, and return the summary."""
    _check(config, resume)
    workers = start_workers(config.train.ddp, build_device(config.train.device))
    try:
        with contextlib.ExitStack() as held:  # the run directory's lock, released however the run ends
            summary = _train(config, resume, quiet, workers, held)
    except BaseException:
        workers.close()  # no barrier: the other processes may never arrive
        raise
    workers.close(together=True)
    return summary


def _prepare(config: RunConfig, resume: bool, workers: Workers, held: contextlib.ExitStack) -> Path:
    """Process 0 creates or reopens the run directory and holds its lock (`runs.RunLock`) until the run
    ends; an error there (a second writer, say) stops every process."""
    error = None
    if workers.main:
        try:
            held.enter_context(runs.RunLock(runs.prepare(config, resume)))
        except UsageError as e:
            error = str(e)
    if (error := workers.follow(error)) is not None:
        raise UsageError(error)
    return Path(config.out) / config.run_name()


@dataclass
class Progress:
    """What a checkpoint must restore besides the model, optimizer and random states."""

    step: int = 0
    best: float | None = None
    best_step: int | None = None
    elapsed: float = 0.0  # wall time before this process started (resumed runs)
    step_seconds: float = 0.0  # training steps only, evaluations excluded
    losses: list[float] = field(default_factory=list)  # training losses since the last evaluation
    grad_norms: list[float] = field(default_factory=list)  # gradient norms (before clipping) since then
    penalties: list[float] = field(default_factory=list)  # regulariser values since the last evaluation
    warmup_seconds: float = 0.0  # --warmup: time spent warming up before the first step
    vaa: dict = field(default_factory=dict)  # VAA measured before training: "init", "warm-up"


def _train(config: RunConfig, resume: bool, quiet: bool, workers: Workers, held: contextlib.ExitStack) -> dict:
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = build_device(t.device)
    _reset_peak_memory(device)
    torch.manual_seed(t.seed)
    task = build_task(config)
    curriculum = Curriculum(config, task)  # the task itself for every batch when there is no curriculum
    _check_task(config, task, curriculum)  # before the run directory is made
    model = build_model(config, task)
    check_fits(config, task, model, device)
    if t.init_from and not (resume and _finished(config)):
        load_initial_weights(model, t.init_from)  # before MemUP copies the model into its EMA detector
    model = model.to(device)
    model_penalty(model, t.reg, t.tau, t.reg_fraction, t.reg_scheme, t.tau_c)  # a cell it cannot act on fails here
    train_model = workers.wrap(model)  # DistributedDataParallel under --ddp, else the model itself
    optimizer = make_optimizer(t.optimizer, model.parameters(), t.lr, t.momentum, t.weight_decay)
    schedule = make_schedule(optimizer, t.schedule, t.steps, t.lr_warmup_steps)
    generator = stream(t.seed, "train", workers.rank)  # longrnn.streams: never a fixed set's stream
    memup = build_memup(model, task, t, device, curriculum.task_at) if t.trainer == "memup" else None

    run_dir = _prepare(config, resume, workers, held)
    if resume and (finished := runs.read_summary(run_dir)) is not None:
        check_data(run_dir, task)  # a finished run's numbers are of the data it read
        return {**finished, "run_dir": str(run_dir)}  # nothing left to do; the test set is not read again
    progress = Progress()
    restored = resume and (run_dir / runs.CHECKPOINT).exists()
    if restored:
        progress = _restore(run_dir, model, optimizer, schedule, generator, workers.rank, memup)
    elif workers.main:
        runs.write_text(run_dir / runs.CONFIG, to_toml(config))
        runs.write_text(run_dir / runs.METRICS, "")
    tracked = None  # the experiment trackers of --log, on process 0 (which logs every record)
    if workers.main:
        record_data(run_dir, task, resume)
        (run_dir / runs.SUMMARY).unlink(missing_ok=True)
        tracked = trackers.Trackers(config, run_dir, progress.step, task.baseline("validation") if t.log else None)
        held.callback(tracked.close)  # a run that stops without a summary ends its tracker runs too

    status, message = "finished", ""
    started = time.perf_counter() - progress.elapsed
    if not restored and (t.warmup or t.vaa):
        message = _before_training(config, model, task, device, run_dir, progress, tracked, quiet)
        status = "diverged" if message else status
    bar = progress_bar(t.steps, config.run_name(), initial=progress.step, disable=quiet or not workers.main)
    model.train()
    while status == "finished" and progress.step < t.steps:
        step_started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if memup is not None:
            loss = memup.loss(generator)  # draws the next batch when the last one is used up
        else:
            train_task = curriculum.task_at(progress.step)  # a batch too long to hold: backward already done
            loss = batch_loss(t, train_model, train_task, generator, device, streaming=not workers.active)
        penalty = model_penalty(model, t.reg, t.tau, t.reg_fraction, t.reg_scheme, t.tau_c)  # None without --reg
        differentiable = [part for part in (loss, penalty) if part is not None and part.requires_grad]
        if differentiable:
            sum(differentiable).backward()
        loss = workers.average(loss)  # under --ddp every process sees the mean loss, and decides alike
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip if t.clip > 0 else float("inf"))
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            status = "diverged"
            message = f"non-finite {'loss' if not torch.isfinite(loss) else 'gradient'} at step {progress.step + 1}"
            break
        if memup is not None:
            memup.drop_frozen_grads()  # the alternating schedule's fixed part
        optimizer.step()
        schedule.step()
        if memup is not None:
            memup.advance()  # detach the carried state, update the EMA detector
        progress.step += 1
        progress.losses.append(loss.item())
        progress.grad_norms.append(grad_norm.item())
        if penalty is not None:
            progress.penalties.append(penalty.item())
        progress.step_seconds += time.perf_counter() - step_started
        bar.update(1)

        if progress.step % t.eval_every == 0 or progress.step == t.steps:
            generators = workers.gather(generator.get_state())
            progress.elapsed = time.perf_counter() - started
            stop = None
            if workers.main:
                evaluated = model if memup is None else memup.evaluated_model()  # memup_eval_ema: the EMA copy
                val = _evaluate_and_log(config, task, evaluated, schedule, run_dir, device, progress, bar, tracked)
                _save_checkpoint(run_dir, model, optimizer, schedule, generators, progress, memup)
                if t.stop_when_solved and task.is_solved(val):
                    score = val[task.main_metric]
                    stop = ("solved", f"validation {task.main_metric} {score:.4g} reached {task.solved_at}")
            progress.losses, progress.penalties, progress.grad_norms = [], [], []
            if (stop := workers.follow(stop)) is not None:
                status, message = stop
                break
    bar.close()
    if status == "diverged" and not quiet and workers.main:
        print(f"run {run_dir} diverged: {message}", file=sys.stderr)

    checksums = workers.gather(parameter_checksums(model))
    if not workers.main:
        return {"status": status, "message": message, "rank": workers.rank, "run_dir": str(run_dir)}
    summary = _summary(config, task, model, run_dir, device, progress, status, message, time.perf_counter() - started)
    if workers.active:
        summary.update(world_size=workers.world_size, parameters_identical=all(c == checksums[0] for c in checksums))
    runs.write_json(run_dir / runs.SUMMARY, summary)
    tracked.finish(summary)
    return {**summary, "run_dir": str(run_dir)}


def _restore(run_dir: Path, model, optimizer, schedule, generator, rank: int, memup=None) -> Progress:
    """Load the last checkpoint into the training objects; drop metrics logged after it. A checkpoint that
    does not fit the run's config is a `runs.DamagedFile`."""
    advice = "delete it to train the run again from its start with --resume, or restore it from a copy"
    ckpt = runs.load_torch(run_dir / runs.CHECKPOINT, advice)
    try:
        return _restore_from(ckpt, run_dir, model, optimizer, schedule, generator, rank, memup)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise runs.DamagedFile(f"{run_dir / runs.CHECKPOINT} does not fit the run its config.toml describes "
                               f"({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}); "
                               f"{advice}") from None


def _restore_from(ckpt: dict, run_dir: Path, model, optimizer, schedule, generator, rank: int, memup) -> Progress:
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["schedule"])
    generator.set_state(ckpt["generators"][rank] if "generators" in ckpt else ckpt["generator"])  # older runs
    torch.set_rng_state(ckpt["torch_rng"])
    if memup is not None:
        memup.load_state_dict(ckpt["memup"])
    runs.truncate_metrics(run_dir, ckpt["step"])
    return Progress(ckpt["step"], ckpt["best"], ckpt["best_step"], ckpt["elapsed"], ckpt["step_seconds"],
                    warmup_seconds=ckpt.get("warmup_seconds", 0.0), vaa=ckpt.get("vaa", {}))


def _save_checkpoint(run_dir: Path, model, optimizer, schedule, generators: list, progress: Progress,
                     memup=None) -> None:
    """Everything `_restore` needs, written atomically (``generators``: every process's batch generator)."""
    runs.save_torch(run_dir / runs.CHECKPOINT, {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "generators": generators,
        "torch_rng": torch.get_rng_state(),
        "step": progress.step,
        "best": progress.best,
        "best_step": progress.best_step,
        "elapsed": progress.elapsed,
        "step_seconds": progress.step_seconds,
        "warmup_seconds": progress.warmup_seconds,
        "vaa": progress.vaa,
        **({"memup": memup.state_dict()} if memup is not None else {}),
    })


def _log(run_dir: Path, tracked: trackers.Trackers, record: dict) -> None:
    """One metrics record: into metrics.jsonl, and to the trackers of --log."""
    runs.append_metrics(run_dir, record)
    tracked.log(record)


def _before_training(config, model, task, device, run_dir: Path, progress: Progress, tracked, quiet: bool) -> str:
    """VAA at initialisation, then (``--warmup``) the warm-up and VAA after it, logged as step-0 records;
    returns why the run diverged ('' if it did not). ``tracked``: the trackers, None on a process other
    than 0."""
    main = tracked is not None
    if main:
        progress.vaa["init"] = measure_vaa(config, model, task, device)
        _log(run_dir, tracked, {"step": 0, "phase": "init", "val_vaa": progress.vaa["init"]})
    if not config.train.warmup:
        return ""
    try:
        history = warm_up_before_training(config, model, task, device, quiet or not main)
    except FloatingPointError as e:
        return f"warm-up: {e}"
    progress.warmup_seconds = history["seconds"]
    if main:
        progress.vaa["warm-up"] = measure_vaa(config, model, task, device)
        runs.write_json(run_dir / runs.WARMUP, history)
        _log(run_dir, tracked, {
            "step": 0,
            "phase": "warm-up",
            "val_vaa": progress.vaa["warm-up"],
            "warmup_loss": history["loss"][-1] if history["loss"] else None,
            "warmup_vaa_star": history["vaa_star"][-1] if history["vaa_star"] else None,
            "warmup_seconds": history["seconds"],
        })
    return ""


def _evaluate_and_log(config, task, model, schedule, run_dir: Path, device, progress: Progress, bar,
                      tracked: trackers.Trackers) -> dict:
    """Score the validation set, log a metrics record, keep the best weights in model.pt."""
    t = config.train
    val = evaluate(model, task, "validation", t.eval_batch_size, device)
    record = {
        "step": progress.step,
        "train_loss": sum(progress.losses) / len(progress.losses),
        "lr": schedule.get_last_lr()[0],
        "grad_norm": sum(progress.grad_norms) / len(progress.grad_norms),  # before clipping
        "time": progress.elapsed,
        "peak_memory_mb": _peak_memory_mb(device),
        **{f"val_{k}": v for k, v in val.items()},
    }
    if progress.penalties:
        record["train_reg"] = sum(progress.penalties) / len(progress.penalties)
    if t.vaa:
        record["val_vaa"] = measure_vaa(config, model, task, device)
    if t.vaa and t.vaa_batches:
        record["train_vaa"] = measure_vaa_on_training_batches(config, model, task, device, progress.step)
    if t.diagnostics:
        x_diag = first_fixed_sequences(task, "validation", DIAGNOSTIC_SEQUENCES, DIAGNOSTIC_STEPS).to(device)
        record.update(gate_statistics(model, x_diag))
    _log(run_dir, tracked, record)
    score = val[task.main_metric]
    if np.isfinite(score) and task.better(score, progress.best):
        progress.best, progress.best_step = score, progress.step
        runs.save_torch(run_dir / runs.MODEL, model.state_dict())
    bar.set_postfix(loss=f"{record['train_loss']:.4g}", **{task.main_metric: f"{score:.4g}"})
    return val


def _warmup_summary(config, model, task, device, progress: Progress, best_loaded: bool) -> dict:
    """Warm-up's time and its ratio to the training steps' time; VAA before training and of the best weights."""
    t = config.train
    out = {}
    if t.warmup:
        out["warmup_seconds"] = progress.warmup_seconds
        out["warmup_cost_ratio"] = progress.warmup_seconds / progress.step_seconds if progress.step_seconds else None
    if t.warmup or t.vaa:
        out["vaa"] = {**progress.vaa, "best": measure_vaa(config, model, task, device) if best_loaded else None}
    return out


def _summary(config, task, model, run_dir: Path, device, progress: Progress, status: str, message: str,
             wall_time: float) -> dict:
    """Score the best-on-validation weights on validation and test (the only read of the test set)."""
    t = config.train
    validation, test = None, None
    if progress.best_step is not None:
        model.load_state_dict(runs.load_torch(run_dir / runs.MODEL, "delete checkpoint.pt and model.pt to train "
                                                 "the run again from its start with --resume"))
        validation = evaluate(model, task, "validation", t.eval_batch_size, device)
        test = evaluate(model, task, "test", t.eval_batch_size, device)
    summary = {
        "status": status,
        "message": message,
        **_warmup_summary(config, model, task, device, progress, validation is not None),
        "steps": progress.step,
        "best_step": progress.best_step,
        "validation": validation,
        "test": test,
        "baseline": task.baseline("test"),
        "expected_baseline": task.expected_baseline(),
        **({"baselines": task.baselines("test")} if hasattr(task, "baselines") else {}),
        "main_metric": task.main_metric,
        "higher_is_better": task.higher_is_better,
        "solved_at": task.solved_at,
        "task": config.task.name,
        "seq_len": task.seq_len,
        "cell": config.model.cell,
        "seed": t.seed,
        "config_id": config.identity(),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": wall_time,
        "seconds_per_step": progress.step_seconds / max(1, progress.step),
        "peak_memory_mb": _peak_memory_mb(device),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "versions": _versions(),
    }
    if t.test_lengths and test is not None:  # after the peak was read: these sets are not training's memory
        summary["test_lengths"] = test_at_lengths(config, model, device)
    return summary
