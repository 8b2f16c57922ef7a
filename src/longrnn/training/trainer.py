"""The training loop: one function, `train(config)`, read top to bottom.

Each step draws a fresh batch from the task's seeded generator, computes the (full or truncated)
BPTT loss, clips the gradient norm and takes an optimizer step. Every ``eval_every`` steps it scores
the validation set, keeps the best weights in ``model.pt`` and writes a full checkpoint (model,
optimizer, schedule and every random-number state) so that ``--resume`` continues bit-for-bit where
the last checkpoint left off. A non-finite loss or gradient stops the run, which is recorded as
``diverged`` in ``summary.json``. At the end the best-on-validation weights are scored on the test
set, which is read only then.
"""

from __future__ import annotations

import platform
import resource
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm

import longrnn
from longrnn import runs
from longrnn.config import RunConfig, to_toml
from longrnn.diagnostics import gate_statistics
from longrnn.errors import UsageError, check_positive, unknown
from longrnn.training.bptt import TRAINERS, bptt_loss, tbptt_loss
from longrnn.training.build import build_model, build_task
from longrnn.training.evaluate import evaluate
from longrnn.training.memup import MemUP, check_settings
from longrnn.training.optim import make_optimizer, make_schedule

DIAGNOSTIC_SEQUENCES = 64  # validation sequences the gate diagnostics look at


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} is not available on this machine; allowed: cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; allowed: cpu, cuda, cuda:N") from None


def _check(config: RunConfig) -> None:
    t = config.train
    if t.trainer not in TRAINERS:
        raise unknown("trainer", t.trainer, TRAINERS)
    for key in ("steps", "batch_size", "eval_every", "eval_batch_size", "tbptt_len"):
        check_positive(key, getattr(t, key))
    check_positive("warmup_steps", t.warmup_steps, allow_zero=True)
    check_positive("threads", t.threads, allow_zero=True)
    if not t.lr > 0:
        raise UsageError(f"lr must be positive, got {t.lr!r}")
    if t.clip < 0:
        raise UsageError(f"clip must be >= 0 (0 turns clipping off), got {t.clip!r}")
    if t.trainer == "memup":
        check_settings(t)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _versions() -> dict:
    return {
        "longrnn": longrnn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train(config: RunConfig, resume: bool = False, quiet: bool = False) -> dict:
    """Train as ``config`` says, write the run directory, and return the summary."""
    _check(config)
    t = config.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = _device(t.device)
    torch.manual_seed(t.seed)
    task = build_task(config)
    model = build_model(config, task).to(device)
    optimizer = make_optimizer(t.optimizer, model.parameters(), t.lr, t.momentum, t.weight_decay)
    schedule = make_schedule(optimizer, t.schedule, t.steps, t.warmup_steps)
    generator = torch.Generator().manual_seed(t.seed)
    memup = MemUP.from_config(model, task, t, device) if t.trainer == "memup" else None

    run_dir = runs.prepare(config, resume)
    if resume and (finished := runs.read_summary(run_dir)) is not None:
        return {**finished, "run_dir": str(run_dir)}  # nothing left to do; the test set is not read again
    start, best, best_step, elapsed, step_seconds = 0, None, None, 0.0, 0.0
    checkpoint_path = run_dir / runs.CHECKPOINT
    if resume and checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        generator.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        start, best, best_step, elapsed = ckpt["step"], ckpt["best"], ckpt["best_step"], ckpt["elapsed"]
        if memup is not None:
            memup.load_state_dict(ckpt["memup"])
        step_seconds = ckpt["step_seconds"]
        runs.truncate_metrics(run_dir, start)
    else:
        runs.write_text(run_dir / runs.CONFIG, to_toml(config))
        runs.write_text(run_dir / runs.METRICS, "")
    (run_dir / runs.SUMMARY).unlink(missing_ok=True)

    status, message = "finished", ""
    started = time.perf_counter() - elapsed
    losses = []
    bar = tqdm(total=t.steps, initial=start, disable=quiet, desc=config.run_name(), dynamic_ncols=True)
    model.train()
    step = start
    while step < t.steps:
        step_started = time.perf_counter()
        if memup is not None:
            loss = memup.loss(generator)  # draws the next batch from the task when the last one is used up
        else:
            x, y = task.sample(t.batch_size, generator)
            x, y = x.to(device), y.to(device)
            if t.trainer == "bptt":
                loss = bptt_loss(model, task, x, y)
            else:
                loss = tbptt_loss(model, task, x, y, t.tbptt_len)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip if t.clip > 0 else float("inf"))
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            status = "diverged"
            message = f"non-finite {'loss' if not torch.isfinite(loss) else 'gradient'} at step {step + 1}"
            break
        optimizer.step()
        schedule.step()
        if memup is not None:
            memup.advance()
        step += 1
        losses.append(loss.item())
        step_seconds += time.perf_counter() - step_started
        bar.update(1)

        if step % t.eval_every == 0 or step == t.steps:
            val = evaluate(model, task, "validation", t.eval_batch_size, device)
            record = {
                "step": step,
                "train_loss": sum(losses) / len(losses),
                "lr": schedule.get_last_lr()[0],
                "time": time.perf_counter() - started,
                **{f"val_{k}": v for k, v in val.items()},
            }
            if t.diagnostics:
                x_diag = task.validation_set()[0][:DIAGNOSTIC_SEQUENCES].to(device)
                record.update(gate_statistics(model, x_diag))
            losses = []
            runs.append_metrics(run_dir, record)
            score = val[task.main_metric]
            if np.isfinite(score) and task.better(score, best):
                best, best_step = score, step
                runs.save_torch(run_dir / runs.MODEL, model.state_dict())
            bar.set_postfix(loss=f"{record['train_loss']:.4g}", **{task.main_metric: f"{score:.4g}"})
            runs.save_torch(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "step": step,
                    "best": best,
                    "best_step": best_step,
                    "elapsed": time.perf_counter() - started,
                    "step_seconds": step_seconds,
                    **({"memup": memup.state_dict()} if memup is not None else {}),
                },
            )
            if t.stop_when_solved and task.is_solved(val):
                status, message = "solved", f"validation {task.main_metric} {score:.4g} reached {task.solved_at}"
                break
    bar.close()
    if status == "diverged" and not quiet:
        print(f"run {run_dir} diverged: {message}", file=sys.stderr)

    validation, test = None, None
    if best_step is not None:
        model.load_state_dict(torch.load(run_dir / runs.MODEL, weights_only=True))
        validation = evaluate(model, task, "validation", t.eval_batch_size, device)
        test = evaluate(model, task, "test", t.eval_batch_size, device)
    summary = {
        "status": status,
        "message": message,
        "steps": step,
        "best_step": best_step,
        "validation": validation,
        "test": test,
        "baseline": task.baseline("test"),
        "expected_baseline": task.expected_baseline(),
        "main_metric": task.main_metric,
        "higher_is_better": task.higher_is_better,
        "solved_at": task.solved_at,
        "task": config.task.name,
        "seq_len": task.seq_len,
        "cell": config.model.cell,
        "seed": t.seed,
        "config_id": config.identity(),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": time.perf_counter() - started,
        "seconds_per_step": step_seconds / max(1, step),  # training steps only, evaluations excluded
        "peak_memory_mb": _peak_memory_mb(device),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "versions": _versions(),
    }
    runs.write_json(run_dir / runs.SUMMARY, summary)
    return {**summary, "run_dir": str(run_dir)}
