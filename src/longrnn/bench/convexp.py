"""``longrnn bench convexp``: the cost of the convolutional exponential against lattice size, as ratios.

For each square lattice s×s (N = s² sites, c channels, n = cN state units) one timed unit is a
training step of one recurrent step with its kernel built from scratch: forward and backward of

* ``conv_unitary``: the `conv_unitary` cell's kernel spectrum Û = expm(F{P - P†}) (FFT, N c×c
  exponentials) plus one step h -> φ(U ⊛ h + W x) applied by FFT;
* ``dense expm``: the same operator as an n×n matrix, ``torch.linalg.matrix_exp(D_A)`` and one
  matrix-vector step (only while n <= ``dense_max``; D_A is built once, outside the timing);
* ``orthogonal RNN``: the dense `orthogonal` cell with n units (its n×n matrix exponential and one
  step), also only while n <= ``dense_max``.

Reported, all from one process: milliseconds, time per site relative to the smallest lattice
(``per_site_ratio``; the FFT claim is that it stays within the log factor log N / log N_0), and the
dense variants' times as multiples of ``conv_unitary``'s at the same size. Threads are fixed, warm-up
rounds come first and variants are timed round-robin, as in `longrnn.bench.speed`.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from longrnn.cells import make_cell
from longrnn.console import track
from longrnn.errors import UsageError, check_positive
from longrnn.functional.convexp import dense_operator

INPUT_SIZE = 8


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cell_step(cell, x: torch.Tensor):
    """Forward + backward of one step of ``cell`` from a random state, kernel built inside the step."""
    state = torch.randn_like(cell.init_state(x.shape[0]))

    def run():
        cell.zero_grad(set_to_none=True)
        out, _ = cell(x, state)
        out.sum().backward()

    return run


def _dense_step(A: torch.Tensor, batch_size: int):
    """Forward + backward of h -> exp(D_A) h for the dense n×n operator of the generator A."""
    D_A = dense_operator(A.detach()).requires_grad_()
    h = torch.randn(batch_size, D_A.shape[0], dtype=D_A.dtype)

    def run():
        D_A.grad = None
        (h @ torch.linalg.matrix_exp(D_A).T).abs().sum().backward()  # |.|: a real loss for complex states too

    return run


def convexp_scaling(
    sizes=(16, 32, 64, 128, 256),
    channels: int = 1,
    batch_size: int = 8,
    complex_state: bool = False,
    stencil: int = 3,
    dense_max: int = 2048,
    threads: int = 1,
    warmup_rounds: int = 1,
    repeats: int = 5,
    seed: int = 0,
    quiet: bool = False,
) -> list[dict]:
    """Rows ``{"lattice", "sites", "units", "variant", "ms", "per_site_ratio", "log_factor", "vs_conv"}``."""
    for name, value in (("channels", channels), ("batch_size", batch_size), ("dense_max", dense_max),
                        ("threads", threads), ("repeats", repeats)):
        check_positive(name, value)
    check_positive("warmup_rounds", warmup_rounds, allow_zero=True)
    for s in sizes:
        check_positive("lattice size", s)
    if stencil > min(sizes):  # the table would name a stencil that was never used
        widest = min(sizes) - (min(sizes) + 1) % 2  # stencils are odd
        raise UsageError(f"stencil {stencil} does not fit the smallest lattice {min(sizes)}x{min(sizes)}; give an odd "
                         f"stencil of at most {widest} units, or 0 for the whole lattice")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)

    variants = []  # (size, label, run)
    for s in sizes:
        cell = make_cell("conv_unitary", INPUT_SIZE, channels * s * s, lattice=f"{s}x{s}", channels=channels,
                         complex_state=complex_state, stencil=stencil)
        x = torch.randn(batch_size, INPUT_SIZE)
        variants.append((s, "conv_unitary", _cell_step(cell, x)))
        if cell.hidden_size <= dense_max:
            variants.append((s, "dense expm", _dense_step(cell.generator_kernel(), batch_size)))
            orthogonal = make_cell("orthogonal", INPUT_SIZE, cell.hidden_size)
            variants.append((s, "orthogonal RNN", _cell_step(orthogonal, x)))

    times = {(s, label): [] for s, label, _ in variants}
    for round_ in track(range(warmup_rounds + repeats), warmup_rounds + repeats, "bench convexp", disable=quiet):
        for s, label, run in variants:
            t = _seconds(run)
            if round_ >= warmup_rounds:
                times[(s, label)].append(t)

    conv = {s: statistics.median(times[(s, "conv_unitary")]) for s in sizes}
    first = sizes[0]
    rows = []
    for (s, label), ts in times.items():
        ms = statistics.median(ts)
        sites = s * s
        row = {"lattice": f"{s}x{s}", "sites": sites, "units": channels * sites, "variant": label, "ms": 1000 * ms,
               "per_site_ratio": None, "log_factor": None, "vs_conv": None}
        if label == "conv_unitary":
            row["per_site_ratio"] = (ms / sites) / (conv[first] / first**2)
            row["log_factor"] = math.log(sites) / math.log(first**2) if first > 1 else None
        else:
            row["vs_conv"] = statistics.median(t / c for t, c in zip(ts, times[(s, "conv_unitary")]))
        rows.append(row)
    return rows


def scaling_table(rows: list[dict], setup: str) -> str:
    """`convexp_scaling`'s rows as a Markdown table under the ``setup`` line (times in ms, ratios)."""
    lines = [
        f"{setup}\n",
        "| lattice | units | variant | fwd+bwd (ms) | time per site × smallest lattice "
        "| log N / log N₀ | × conv_unitary |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(v):
        return "" if v is None else f"{v:.2f}"

    for r in rows:
        lines.append(f"| {r['lattice']} | {r['units']} | {r['variant']} | {r['ms']:.2f} | {fmt(r['per_site_ratio'])} | "
                     f"{fmt(r['log_factor'])} | {fmt(r['vs_conv'])} |")
    return "\n".join(lines) + "\n"
