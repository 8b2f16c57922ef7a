"""Saturation diagnostics of the forget (LSTM) / update (GRU) gate, logged during training.

A gate value f at exactly 1.0 in float32 keeps the state forever and, through σ'(z) = f(1 - f) = 0,
no longer learns; a value near 1 gives the state a time scale T = 1/(1 - f) (Tallec & Ollivier 2018).
`gate_statistics` runs a model over a batch, recomputes the keep-gate value of every unit at every
step from the per-step states (cells that have such a gate expose `forget_gate_values`), and returns

    gate_at_1, gate_at_0      fractions of gate values exactly 1 / exactly 0 in float32
    timescale_p50/p90/p99     quantiles of 1/(1 - f) over the values below 1

or an empty dict for a model without such gates.
"""

from __future__ import annotations

import torch
from torch import nn

from longrnn.cells import State
from longrnn.methods.stack import for_each_stack
from longrnn.models import SequenceModel

QUANTILES = (0.5, 0.9, 0.99)
MAX_VALUES_FOR_QUANTILES = 1_000_000  # torch.quantile's input limit is 16M; a strided subsample suffices
CHUNK_LEN = 256  # time steps the stack runs at once while the gates are recomputed


def states_before_each_step(initial: State, states: State) -> State:
    """Per-step states (batch, time, ...) shifted right by one, with the initial state first."""
    if isinstance(states, tuple):
        return tuple(states_before_each_step(i, s) for i, s in zip(initial, states))
    return torch.cat([initial.unsqueeze(1), states[:, :-1]], dim=1)


@torch.no_grad()
def keep_gate_chunks(model: SequenceModel, x: torch.Tensor, chunk_len: int = CHUNK_LEN):
    """Yield ``(layer index, that layer's keep-gate values over one chunk of time, (batch, time, ...))``.

    The whole stack runs ``chunk_len`` steps at a time from its carried states, so memory is bounded by
    a chunk, not by the sequence (per-step states of a layer over T = 5,000 steps take gigabytes).
    """
    states = [cell.init_state(x.shape[0], device=x.device, dtype=x.dtype) for cell in model.cells]
    for piece in x.split(chunk_len, dim=1):
        h = piece
        for i, layer in enumerate(model.layers):
            outputs, final, per_step = layer(h, states[i], return_states=True)
            cell = layer.cell
            if hasattr(cell, "forget_gate_values"):
                yield i, cell.forget_gate_values(cell.project_input(h), states_before_each_step(states[i], per_step))
            states[i], h = final, outputs


def keep_gate_values(model: SequenceModel, x: torch.Tensor, chunk_len: int = CHUNK_LEN) -> torch.Tensor | None:
    """All keep-gate values of all gated layers, flattened layer by layer ((batch, time, ...) order), or
    None if no layer has such a gate."""
    per_layer: dict[int, list[torch.Tensor]] = {}
    for i, values in keep_gate_chunks(model, x, chunk_len):
        per_layer.setdefault(i, []).append(values)
    if not per_layer:
        return None
    return torch.cat([torch.cat(chunks, 1).flatten() for _, chunks in sorted(per_layer.items())])


def gate_statistics(model: nn.Module, x: torch.Tensor, chunk_len: int = CHUNK_LEN) -> dict:
    """The statistics of the module docstring, streamed over chunks of time (memory bounded by a chunk).

    ``model``: a `SequenceModel` or a unidirectional `longrnn.nn` layer, with ``x`` (batch, time, features)
    in its own layout; or any module holding such layers, with the inputs of the module itself: then
    ``{path of the layer: its statistics}``.

    Raises:
        ValueError (`longrnn.errors.UsageError`): no longrnn layer in ``model``, a bidirectional one, or
            inputs that are not batched sequences.
    """
    return for_each_stack(_gate_statistics, model, x, chunk_len)


def _gate_statistics(model, x: torch.Tensor, chunk_len: int) -> dict[str, float]:
    was_training = model.training
    model.eval()
    total = at_1 = at_0 = 0
    below = []  # a strided subsample of the values below 1, for the quantiles
    stride = None
    try:
        for _, values in keep_gate_chunks(model, x, chunk_len):
            f = values.float().flatten()
            if stride is None:  # from the first chunk: about MAX_VALUES_FOR_QUANTILES values in all
                chunks = -(-x.shape[1] // chunk_len)
                stride = f.numel() * chunks * len(model.layers) // MAX_VALUES_FOR_QUANTILES + 1
            total += f.numel()
            at_1 += int((f == 1).sum())
            at_0 += int((f == 0).sum())
            below.append(f[f < 1][::stride])
    finally:
        model.train(was_training)
    if not total:
        return {}
    stats = {"gate_at_1": at_1 / total, "gate_at_0": at_0 / total}
    below = torch.cat(below)
    if len(below):
        timescales = torch.quantile(1.0 / (1.0 - below.double()),
                                    torch.tensor(QUANTILES, dtype=torch.float64, device=below.device))
        stats.update({f"timescale_p{round(100 * q)}": float(t) for q, t in zip(QUANTILES, timescales)})
    return stats
