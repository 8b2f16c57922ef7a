"""Memory benchmark: peak memory of training against sequence length, per trainer.

Each configuration (trainer, T) runs in its own child process (``spawn``), so one measurement's
allocations never count in another's. The child builds the task, model and optimizer exactly as
`longrnn.training.train` does, records its resident memory, runs ``steps`` optimisation steps of the
trainer (for ``memup`` this includes the detector's pass over the whole sequences), and reports:

* ``peak_mb``: the process's peak — on the CPU the peak resident set size (``ru_maxrss``), which
  includes the interpreter and torch themselves; on CUDA ``torch.cuda.max_memory_allocated``;
* ``training_mb``: the peak minus the memory held just before the first step (on the CPU:
  inputs, model and optimizer were built by then), i.e. what training itself added.

Expected shape: full BPTT grows linearly in T (the graph keeps every step); truncated BPTT and MemUP
keep a graph of r steps only, so their training memory is flat in T apart from the inputs — and truncated
BPTT builds a batch too long to hold chunk by chunk (`Task.streams_batch`), so beyond that it is flat.

``evaluation`` (``--evaluation``) measures scoring the validation set as training does it
(`longrnn.training.evaluate`): in memory, sequences run a chunk at a time, and a set too large to hold
is read chunk by chunk (`Task.streamed`). A child that dies (e.g. killed for memory) gives a row with
no numbers and the reason.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import sys
from pathlib import Path

from longrnn.errors import check_positive, require_extra, unknown

BENCH_TRAINERS = ("bptt", "tbptt", "memup")
EVALUATION = "evaluation"  # a row of its own: scoring the validation set


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _setup(config_dict: dict):
    """The config (a `RunConfig` as a dict), its device, task and model, built as `longrnn train` builds them."""
    import torch

    from longrnn.runs.config import from_dict
    from longrnn.training.build import build_model, build_task

    config = from_dict(config_dict)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    device = torch.device(config.train.device)
    torch.manual_seed(config.train.seed)
    task = build_task(config)
    return config, device, task, build_model(config, task).to(device)


def _held_mb(device) -> float:
    """What the process holds now (CPU: resident set; CUDA: allocated, the peak counter reset here)."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    return _rss_mb()


def measure(config_dict: dict, steps: int) -> dict:
    """Run ``steps`` training steps of the config (a `RunConfig` as a dict) here; report memory in MiB."""
    import torch

    from longrnn.streams import stream
    from longrnn.training.bptt import batch_loss
    from longrnn.training.memup import MemUP
    from longrnn.training.optim import make_optimizer

    config, device, task, model = _setup(config_dict)
    t = config.train
    optimizer = make_optimizer(t.optimizer, model.parameters(), t.lr, t.momentum, t.weight_decay)
    generator = stream(t.seed, "train")
    memup = MemUP.from_config(model, task, t, device) if t.trainer == "memup" else None
    base = _held_mb(device)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = memup.loss(generator) if memup is not None else batch_loss(t, model, task, generator, device)
        if loss.requires_grad:  # a batch built chunk by chunk has had its backward already
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip if t.clip > 0 else float("inf"))
        optimizer.step()
        if memup is not None:
            memup.advance()
    return _result(t.trainer, task, device, base)


def measure_evaluation(config_dict: dict) -> dict:
    """Score the config's model (fresh weights) on its task's validation set here; report memory in MiB
    (``training_mb``: what scoring added)."""
    from longrnn.training.evaluate import evaluate

    config, device, task, model = _setup(config_dict)
    base = _held_mb(device)
    evaluate(model, task, "validation", config.train.eval_batch_size, device)
    return _result(EVALUATION, task, device, base)


def _result(kind: str, task, device, base: float) -> dict:
    import torch

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"trainer": kind, "seq_len": task.seq_len, "peak_mb": peak, "training_mb": max(0.0, peak - base)}


def peak_bytes(fn) -> int:
    """The most bytes held at once by CPU tensors that ``fn()`` allocated while it ran (torch's profiler:
    every allocation and free in time order, summed; what was allocated before is not counted)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from longrnn.bench.speed import stderr_silenced

    with stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # The raw records, not ``prof.events()``: building that event list costs ~20x the run itself
    changes = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                     if e.name() == "[memory]" and e.device_type() == DeviceType.CPU)
    held = peak = 0
    for _, change in changes:
        held += change
        peak = max(peak, held)
    return peak


def memory(config, trainers, seq_lens, steps: int = 3, quiet: bool = False, evaluation: bool = False) -> list[dict]:
    """One child process per (trainer, seq_len) on top of ``config`` (a `RunConfig`), then per seq_len for
    the validation set's scoring with ``evaluation``; rows in that order."""
    for trainer in trainers:
        if trainer not in BENCH_TRAINERS:
            raise unknown("trainer", trainer, BENCH_TRAINERS)
    for seq_len in seq_lens:
        check_positive("seq_len", seq_len)
    check_positive("steps", steps)
    rows = []
    for kind in [*trainers, *([EVALUATION] if evaluation else [])]:
        for seq_len in seq_lens:
            d = config.to_dict()
            d["task"]["seq_len"] = seq_len
            if kind != EVALUATION:
                d["train"]["trainer"] = kind
            d = {k: v for k, v in d.items() if k in ("task", "model", "train")}
            d = {s: {k: v for k, v in table.items() if v is not None} for s, table in d.items()}
            row = _in_child(measure_evaluation, d) if kind == EVALUATION else _in_child(measure, d, steps)
            row.setdefault("trainer", kind)
            row["setting"] = seq_len  # the --seq-len given (copy: the delay; row["seq_len"]: its steps)
            rows.append(row)
            if not quiet:
                numbers = (f"peak {row['peak_mb']:9.1f} MiB   added {row['training_mb']:9.1f} MiB"
                           if "error" not in row else row["error"])
                print(f"{kind:>10} T={seq_len:<8} {numbers}", file=sys.stderr, flush=True)  # stdout: results
    return rows


def _in_child(fn, *args) -> dict:
    """``fn(*args)`` in a fresh ``spawn`` child; a child that dies gives ``{"error": why}``."""
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(fn, *args).result()
    except concurrent.futures.process.BrokenProcessPool:
        return {"error": "the child process died (killed for memory?)"}


def memory_table(rows: list[dict], setup: str) -> str:
    """Markdown: one row per trainer, one column per sequence length, training MiB (peak MiB)."""
    lengths = sorted({r["setting"] for r in rows})
    trainers = list(dict.fromkeys(r["trainer"] for r in rows))
    cell = {(r["trainer"], r["setting"]): r for r in rows}
    lines = [f"{setup}\n", "| trainer | " + " | ".join(f"T={n}" for n in lengths) + " |",
             "|---" * (len(lengths) + 1) + "|"]
    for trainer in trainers:
        values = []
        for n in lengths:
            r = cell.get((trainer, n))
            text = "died" if r is not None and "error" in r else r and f"{r['training_mb']:.0f} ({r['peak_mb']:.0f})"
            values.append(text or "")
        lines.append(f"| {trainer} | " + " | ".join(values) + " |")
    lines.append("\nEach entry: memory added by training (the evaluation row: by scoring the validation set) in MiB "
                 "(the process's peak in MiB); \"died\": the child process was killed (out of memory).")
    return "\n".join(lines) + "\n"


def memory_plot(rows: list[dict], path: str | Path) -> Path:
    """Training memory against sequence length, one line per trainer (needs the ``plot`` extra)."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for trainer in dict.fromkeys(r["trainer"] for r in rows):
        mine = sorted((r for r in rows if r["trainer"] == trainer and "error" not in r), key=lambda r: r["setting"])
        ax.plot([r["setting"] for r in mine], [r["training_mb"] for r in mine], marker="o", label=trainer)
    lengths = sorted({r["setting"] for r in rows})
    if lengths[-1] >= 100 * lengths[0]:  # decades apart: a log axis with a tick at each length
        ax.set_xscale("log")
        ax.set_xticks(lengths, [f"{n:,}" for n in lengths], fontsize=7)
        ax.minorticks_off()
    ax.set_xlabel("sequence length setting (seq_len)")
    ax.set_ylabel("memory added (MiB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
