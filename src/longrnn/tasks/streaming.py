"""Long sequences read chunk by chunk: a task's *plan* and its *windows*.

A sequence of a million steps does not fit in memory a thousand times over, but what makes it a task
instance is small: for copy the 10 symbols and where the delimiter sits, for copy_first the first value.
A task that streams splits its draw in two:

    plan = task.plan(batch_size, generator)       # a dict of (batch, ...) tensors: all a sequence needs
    x, y = task.window(plan, start, stop)         # steps start..stop-1 of every sequence of the plan

``y`` is what `Task.sample` gives for those steps: for readout "all" the per-step targets of the window
(batch, stop - start, ...), for readout "last" the final target (batch, ...) whatever the window. The
windows of one plan, concatenated, are the whole sequences whatever the chunk sizes (tested), and rows
of a plan are sequences of their own: `plan_rows` of a plan gives the same sequences as the full plan's
rows, so evaluating in batches of any size scores the same set.

Noise that fills a sequence (copy_first's N(0, 1) inputs, adding's U[0, 1) values) cannot come from one
torch generator read in order: a (batch, time) draw is laid out sequence by sequence, so chunk k of every
sequence would need the whole draw. It comes from `noise`: each sequence has a 63-bit key in its plan,
and steps come in blocks of `NOISE_BLOCK` drawn from ``numpy.random.default_rng([key, block])``
(SeedSequence hashes the pair, so no two blocks or sequences share a stream).
"""

from __future__ import annotations

import numpy as np
import torch

NOISE_BLOCK = 4096  # steps of noise drawn at once for one sequence
KEY_LIMIT = 2**63 - 1


def noise_keys(batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(batch,) int64: one noise key per sequence, drawn from ``generator``."""
    return torch.randint(0, KEY_LIMIT, (batch_size,), generator=generator, dtype=torch.int64)


def noise(keys: torch.Tensor, start: int, stop: int, kind: str = "normal", features: int = 1) -> torch.Tensor:
    """(batch, stop - start, features) float32: steps start..stop-1 of each key's noise stream, standard
    normal (``kind="normal"``) or uniform in [0, 1) (``"uniform"``); the same values for a step whatever
    window asks for it."""
    if kind not in ("normal", "uniform"):
        raise ValueError(f"unknown noise kind {kind!r}; allowed: normal, uniform")
    out = np.empty((len(keys), stop - start, features), dtype=np.float32)
    first, last = start // NOISE_BLOCK, (stop - 1) // NOISE_BLOCK  # no block when stop <= start
    for row, key in enumerate(keys.tolist()):
        for block in range(first, last + 1):
            rng = np.random.default_rng([key, block])
            values = (rng.standard_normal((NOISE_BLOCK, features), dtype=np.float32) if kind == "normal"
                      else rng.random((NOISE_BLOCK, features), dtype=np.float32))
            lo, hi = max(start, block * NOISE_BLOCK), min(stop, (block + 1) * NOISE_BLOCK)
            out[row, lo - start : hi - start] = values[lo - block * NOISE_BLOCK : hi - block * NOISE_BLOCK]
    return torch.from_numpy(out)


def plan_rows(plan: dict, rows: slice) -> dict:
    """The plan of sequences ``rows`` of ``plan`` (every tensor cut along its first axis)."""
    return {name: value[rows] for name, value in plan.items()}


def plan_size(plan: dict) -> int:
    """How many sequences a plan describes."""
    return len(next(iter(plan.values())))


def step_range(start: int, stop: int, seq_len: int) -> torch.Tensor:
    """torch.arange(start, stop), after checking 0 <= start < stop <= seq_len (ValueError otherwise)."""
    if not 0 <= start < stop <= seq_len:
        raise ValueError(f"a window must satisfy 0 <= start < stop <= {seq_len}, got start={start}, stop={stop}")
    return torch.arange(start, stop)
