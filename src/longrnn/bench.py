"""Speed benchmarks, always as ratios against a reference measured in the same process.

`speed(...)` times one training step — forward over (B, T, I) plus backward of the summed outputs —
for every registered cell (through `longrnn.models.Recurrent`, fused kernel where the cell has one,
and the step loop), and for ``torch.nn.LSTM`` as the reference. Threads are fixed, each variant gets
warm-up runs, and the median of the timed repeats is used. The reference is timed before and after
the cells, so drift on a noisy machine shows up in the table instead of hiding in the ratios.
"""

from __future__ import annotations

import statistics
import time

import torch
from tqdm.auto import tqdm

from longrnn.cells import available, make_cell
from longrnn.errors import check_positive, unknown
from longrnn.models import Recurrent


def _time_step(module, x: torch.Tensor, warmup: int, repeats: int) -> float:
    """Median seconds of forward + backward of ``module(x)[0].sum()``."""

    def once():
        x.grad = None
        module.zero_grad(set_to_none=True)
        out = module(x)[0]
        out.sum().backward()

    for _ in range(warmup):
        once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(
    cells=None,
    batch_size: int = 32,
    seq_len: int = 1000,
    hidden_size: int = 128,
    input_size: int = 32,
    threads: int = 1,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    quiet: bool = False,
) -> list[dict]:
    """Rows ``{"variant", "ms", "ratio"}``; ratio = time / time of ``torch.nn.LSTM``."""
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len), ("hidden_size", hidden_size),
                        ("input_size", input_size), ("threads", threads), ("repeats", repeats)):
        check_positive(name, value)
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
    variants.append(("torch.nn.LSTM (reference, again)", reference))

    timed = []
    for label, module in tqdm(variants, disable=quiet, desc="bench speed"):
        timed.append((label, _time_step(module, x, warmup, repeats)))
    ref = statistics.fmean([timed[0][1], timed[-1][1]])
    return [{"variant": label, "ms": 1000 * t, "ratio": t / ref} for label, t in timed]


def speed_table(rows: list[dict], setup: str) -> str:
    lines = [f"{setup}\n", "| variant | fwd+bwd (ms) | × torch.nn.LSTM |", "|---|---|---|"]
    lines += [f"| {r['variant']} | {r['ms']:.1f} | {r['ratio']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"
