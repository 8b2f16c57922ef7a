"""Speed benchmarks, always as ratios against a reference measured in the same process.

`speed(...)` times one training step — forward over (B, T, I) plus backward of the summed outputs —
for every registered cell (through `longrnn.models.Recurrent`, fused kernel where the cell has one,
and the step loop), and for ``torch.nn.LSTM`` as the reference. Threads are fixed, warm-up rounds
come first, and variants are timed round-robin so a machine's drift hits all of them alike.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch
from tqdm.auto import tqdm

from longrnn.cells import available, make_cell
from longrnn.errors import check_positive, unknown
from longrnn.models import Recurrent


def _train_step_seconds(module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward of ``module(x)[0].sum()``."""
    x.grad = None
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    module(x)[0].sum().backward()
    return time.perf_counter() - start


def speed(
    cells=None,
    batch_size: int = 32,
    seq_len: int = 1000,
    hidden_size: int = 128,
    input_size: int = 32,
    threads: int = 1,
    warmup: int = 2,
    repeats: int = 5,
    seed: int = 0,
    quiet: bool = False,
) -> list[dict]:
    """Rows ``{"variant", "ms", "ratio", "ratio_min", "ratio_max"}``; ratio = time / ``torch.nn.LSTM``'s."""
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("hidden_size", hidden_size),
                        ("input_size", input_size), ("threads", threads), ("repeats", repeats)):
        check_positive(name, value)
    check_positive("warmup", warmup, allow_zero=True)
    cells = list(available()) if not cells else cells
    for name in cells:
        if name not in available():
            raise unknown("cell", name, available())
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = torch.randn(batch_size, seq_len, input_size, requires_grad=True)
    reference = torch.nn.LSTM(input_size, hidden_size, batch_first=True)

    variants = [("torch.nn.LSTM (reference)", reference)]
    for name in cells:
        cell = make_cell(name, input_size, hidden_size)
        variants.append((f"{name} (step loop)", Recurrent(cell, fused=False)))
        if cell.fused_forward(x[:, :1].detach(), cell.init_state(batch_size)) is not None:
            variants.append((f"{name} (fused)", Recurrent(cell, fused=True)))

    # Round-robin: every round times each variant once, so slow drift of a noisy machine hits all
    # variants alike; each ratio is the median over rounds of (variant / reference in that round).
    times = {label: [] for label, _ in variants}
    rounds = tqdm(range(warmup + repeats), disable=quiet, desc="bench speed")
    for round_ in rounds:
        for label, module in variants:
            t = _train_step_seconds(module, x)
            if round_ >= warmup:
                times[label].append(t)
    ref = times[variants[0][0]]
    return [
        {
            "variant": label,
            "ms": 1000 * statistics.median(ts),
            "ratio": statistics.median(t / r for t, r in zip(ts, ref)),
            "ratio_min": min(t / r for t, r in zip(ts, ref)),
            "ratio_max": max(t / r for t, r in zip(ts, ref)),
        }
        for label, ts in times.items()
    ]


def cpu_name() -> str:
    """The processor's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def speed_table(rows: list[dict], setup: str) -> str:
    lines = [f"{setup}\n", "| variant | fwd+bwd (ms) | × torch.nn.LSTM | range over rounds |", "|---|---|---|---|"]
    lines += [
        f"| {r['variant']} | {r['ms']:.1f} | {r['ratio']:.2f} | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"
