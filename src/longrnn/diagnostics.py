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

from longrnn.cells import State
from longrnn.models import SequenceModel

QUANTILES = (0.5, 0.9, 0.99)
MAX_VALUES_FOR_QUANTILES = 1_000_000  # torch.quantile's input limit is 16M; a strided subsample suffices


def states_before_each_step(initial: State, states: State) -> State:
    """Per-step states (batch, time, ...) shifted right by one, with the initial state first."""
    if isinstance(states, tuple):
        return tuple(states_before_each_step(i, s) for i, s in zip(initial, states))
    return torch.cat([initial.unsqueeze(1), states[:, :-1]], dim=1)


@torch.no_grad()
def keep_gate_values(model: SequenceModel, x: torch.Tensor) -> torch.Tensor | None:
    """All keep-gate values of all gated layers, flattened, or None if no layer has such a gate."""
    values = []
    h = x
    for layer in model.layers:
        outputs, _, states = layer(h, return_states=True)
        cell = layer.cell
        if hasattr(cell, "forget_gate_values"):
            initial = cell.init_state(x.shape[0], device=x.device, dtype=outputs.dtype)
            previous = states_before_each_step(initial, states)
            values.append(cell.forget_gate_values(cell.project_input(h), previous).flatten())
        h = outputs
    return torch.cat(values) if values else None


def gate_statistics(model: SequenceModel, x: torch.Tensor) -> dict[str, float]:
    was_training = model.training
    model.eval()
    try:
        f = keep_gate_values(model, x)
    finally:
        model.train(was_training)
    if f is None:
        return {}
    f = f.float()
    stats = {"gate_at_1": float((f == 1).float().mean()), "gate_at_0": float((f == 0).float().mean())}
    below = f[f < 1]
    if len(below) > MAX_VALUES_FOR_QUANTILES:
        below = below[:: len(below) // MAX_VALUES_FOR_QUANTILES + 1]
    if len(below):
        timescales = torch.quantile(1.0 / (1.0 - below.double()), torch.tensor(QUANTILES, dtype=torch.float64, device=below.device))
        stats.update({f"timescale_p{round(100 * q)}": float(t) for q, t in zip(QUANTILES, timescales)})
    return stats
