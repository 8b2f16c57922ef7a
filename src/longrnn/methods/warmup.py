"""Warm-up: pre-training that maximises a network's reachable multistability (Lambrechts, De Geeter,
Vecoven, Ernst & Drion, "Warming up recurrent neural networks to maximise reachable multistability
greatly improves learning", Neural Networks 2023, arXiv 2106.01001; procedure and defaults of the
official code, github glambrechts/warmup, ``models_pytorch/models.py``).

Measures, on n final states z_1..z_n (rows of an (n, d) tensor), with d_ij = ||z_i - z_j||₂:

    VAA  = (1/n) Σ_i 1 / |{j : d_ij < ε}|                       (hard; in [1/n, 1])
    VAA* = (1/n) Σ_i 1 / Σ_j C_ij,  C_ij = 1 - ReLU(d_ij - ε) / (d_ij + 1e-6)   (differentiable)

VAA is 1/n when every state ends on one attractor and 1 when all end apart. Where d_ij ≤ ε (always on
the diagonal) C_ij is exactly 1 and its gradient exactly 0; those entries never reach the square root,
so the gradient is never NaN, even for identical states.

Where the states come from (`reachable_states`): each of n real input sequences is cut at a random
prefix length c_k ~ U{1..T} and the network's state at c_k is kept (one batched forward, gathered).
From there the network runs S steps on one constant random input u ~ N(0, I) shared by all samples:

* `measure_vaa`: the hard VAA on the raw final states of the whole stack (S = 10,000), for monitoring;
* `vaa_star_per_layer`: VAA* of each layer alone, started from its own reachable state with its own
  constant input, on tanh of its final state (h, or (h, c) concatenated).

`warm_up` minimises (1/L) Σ_l (VAA*_l - target)² with its own Adam for ``steps`` steps on minibatches of
real training inputs; at step k the stabilisation length is S ~ U{1..min(1 + k·increment, maximum)}. The
readout gets no gradient. In a double layer (`longrnn.cells.double.DoubleCell`) a partial warm-up
computes VAA* on the first half only; the second half of lower layers still receives gradient through
the reachable states, as in the official code.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from longrnn.cells import State
from longrnn.cells.double import DoubleCell
from longrnn.console import track
from longrnn.errors import UsageError, check_bool, check_positive
from longrnn.methods.stack import for_each_stack
from longrnn.models import Recurrent, SequenceModel

EPS = 1e-4
DISTANCE_FLOOR = 1e-6  # the 1e-6 in C_ij's denominator


# --- the measures --------------------------------------------------------------------------------
def _check_states(states: torch.Tensor) -> None:
    if states.dim() != 2 or states.shape[0] < 1:
        raise UsageError(f"expected final states of shape (n, d) with n >= 1, got {tuple(states.shape)}")


def squared_distances(states: torch.Tensor) -> torch.Tensor:
    """||z_i - z_j||² for every pair, from differences (exact zeros for equal rows)."""
    return (states.unsqueeze(1) - states.unsqueeze(0)).pow(2).sum(-1)


@torch.no_grad()
def vaa(states: torch.Tensor, eps: float = EPS) -> float:
    """Hard VAA of (n, d) final states: the mean over i of 1 / (number of states within ε of z_i);
    NaN when a state is not finite (a diverged network has no attractor to count)."""
    _check_states(states)
    if not torch.isfinite(states).all():
        return float("nan")
    neighbours = (squared_distances(states.double()) < eps**2).sum(1)  # includes j = i
    return float((1.0 / neighbours.double()).mean())


def vaa_star(states: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Differentiable VAA* of (n, d) final states, a 0-dim tensor; pairs within ε (and the diagonal) are
    masked out of the square root, so the gradient is finite everywhere."""
    _check_states(states)
    d2 = squared_distances(states)
    n = states.shape[0]
    apart = (d2 > eps**2) & ~torch.eye(n, dtype=torch.bool, device=states.device)
    d = torch.where(apart, d2, torch.ones_like(d2)).sqrt()
    closeness = torch.where(apart, 1.0 - (d - eps) / (d + DISTANCE_FLOOR), torch.ones_like(d))
    return (1.0 / closeness.sum(1)).mean()


# --- reachable states and runs on a constant input ---------------------------------------------------
def flatten_state(state: State) -> torch.Tensor:
    """A state as one (n, d) tensor: the tensors of a tuple state ((h, c)) concatenated."""
    return torch.cat(state, -1) if isinstance(state, tuple) else state


def _gather(states: State, index: torch.Tensor) -> State:
    """From per-step states (n, T, ...), the state of sample k at time index[k]."""
    rows = torch.arange(index.shape[0], device=index.device)
    if isinstance(states, tuple):
        return tuple(s[rows, index] for s in states)
    return states[rows, index]


def reachable_states(model: SequenceModel, inputs: torch.Tensor, generator: torch.Generator | None = None):
    """Each layer's state after a random prefix x_{1:c_k}, c_k ~ U{1..T}, of each sequence (keeps the graph).

    One forward over the batch, cut at the longest prefix drawn; the cells are causal and start from
    zero, so this equals running each prefix on its own. Returns a list with one state per layer.
    """
    n, length = inputs.shape[0], inputs.shape[1]
    lengths = torch.randint(1, length + 1, (n,), generator=generator)
    _, _, states = model.run(inputs[:, : int(lengths.max())], return_states=True)
    index = (lengths - 1).to(inputs.device)
    return [_gather(s, index) for s in states]


def constant_input(batch: int, steps: int, size: int, like: torch.Tensor, generator=None) -> torch.Tensor:
    """u ~ N(0, I) drawn once, repeated over the batch and ``steps`` time steps: (batch, steps, size)."""
    u = torch.randn(size, generator=generator).to(device=like.device, dtype=like.dtype)
    return u.expand(batch, steps, size)


def warmed_part(cell, state: State, partial: bool):
    """The cell (and its state) that warm-up acts on: the first half of a double layer when ``partial``."""
    if partial and isinstance(cell, DoubleCell):
        return cell.first, cell.split_state(state)[0]
    return cell, state


def vaa_star_per_layer(
    model: SequenceModel,
    inputs: torch.Tensor,
    stabilization: int,
    eps: float = EPS,
    partial: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """VAA* of every layer, (num_layers,), each run alone for ``stabilization`` steps on its own constant input."""
    check_positive("stabilization", stabilization)
    starts = reachable_states(model, inputs, generator)
    values = []
    for layer, start in zip(model.layers, starts, strict=True):
        cell, state = warmed_part(layer.cell, start, partial)
        u = constant_input(inputs.shape[0], stabilization, cell.input_size, inputs, generator)
        _, final = Recurrent(cell, fused=layer.fused)(u, state)
        values.append(vaa_star(torch.tanh(flatten_state(final)), eps))
    return torch.stack(values)


def measure_vaa(
    model: nn.Module,
    inputs: torch.Tensor,
    steps: int = 10_000,
    eps: float = EPS,
    generator: torch.Generator | None = None,
) -> float | dict[str, float]:
    """Hard VAA of a whole stack: from reachable states, ``steps`` steps on one constant input, raw final
    states of all layers concatenated; in [1/n, 1] for n input sequences.

    ``model``: a `SequenceModel` or a unidirectional `longrnn.nn` layer, with ``inputs`` (n, time,
    features) in its own layout; or any module holding such layers, with the inputs of the module itself
    (each layer is measured on what it receives there): then ``{path of the layer: VAA}``.

    Raises:
        ValueError (`longrnn.errors.UsageError`): no longrnn layer in ``model``, a bidirectional one, or
            inputs that are not batched sequences.
    """
    return for_each_stack(_measure_vaa, model, inputs, steps, eps, generator)


@torch.no_grad()
def _measure_vaa(model, inputs: torch.Tensor, steps: int, eps: float, generator) -> float:
    check_positive("steps", steps)
    was_training = model.training
    model.eval()
    try:
        starts = reachable_states(model, inputs, generator)
        u = constant_input(inputs.shape[0], steps, model.input_size, inputs, generator)
        _, finals = model.run(u, starts)
    finally:
        model.train(was_training)
    return vaa(torch.cat([flatten_state(s) for s in finals], -1), eps)


# --- the warm-up -----------------------------------------------------------------------------------
def stabilization_length(step: int, increment: int, maximum: int, generator=None) -> int:
    """S ~ U{1..min(1 + step·increment, maximum)}: the curriculum over warm-up steps (0-based)."""
    longest = min(1 + step * increment, maximum)
    return int(torch.randint(1, longest + 1, (1,), generator=generator))


def minibatches(n: int, batch_size: int, generator=None, drop_last: bool = True):
    """Index batches of an epoch-wise random permutation of range(n), forever. With ``drop_last=False`` an
    epoch's last, smaller batch is kept (as torch's DataLoader does by default, and the official warm-up
    code with it)."""
    while True:
        order = torch.randperm(n, generator=generator)
        end = n if not drop_last else n - batch_size + 1
        for start in range(0, end, batch_size):
            yield order[start : start + batch_size]


def _check_warmup_options(inputs, steps, lr, batch_size, eps, target, stabilization_increment, stabilization_max):
    if inputs.dim() != 3:
        raise UsageError(f"warm-up inputs must be (n, time, features), got shape {tuple(inputs.shape)}")
    check_positive("warmup steps", steps, allow_zero=True)
    check_positive("warmup batch_size", batch_size)
    check_positive("warmup stabilization_increment", stabilization_increment, allow_zero=True)
    check_positive("warmup stabilization_max", stabilization_max)
    if batch_size < 2 or batch_size > inputs.shape[0]:
        raise UsageError(f"warmup batch_size must be in [2, {inputs.shape[0]}] (the number of input sequences), "
                         f"got {batch_size}")
    if not lr > 0 or not eps > 0:
        raise UsageError(f"warmup lr and eps must be positive, got lr={lr!r}, eps={eps!r}")
    if not 0 < target <= 1:
        raise UsageError(f"warmup target must be in (0, 1] (VAA* lies in [1/n, 1]), got {target!r}")


def warm_up(
    model: nn.Module,
    inputs: torch.Tensor,
    steps: int = 100,
    lr: float = 1e-2,
    batch_size: int = 32,
    eps: float = EPS,
    target: float = 0.95,
    stabilization_increment: int = 10,
    stabilization_max: int = 200,
    partial: bool = True,
    generator: torch.Generator | None = None,
    progress: bool = False,
    drop_last: bool = True,
) -> dict:
    """Warm ``model`` up in place on training ``inputs``; returns the history.

    ``model``: a `SequenceModel` or a unidirectional `longrnn.nn` layer, with ``inputs`` (n, time,
    features) in its own layout (time first unless ``batch_first``); or any ``nn.Module`` holding such
    layers, with the inputs ``model(inputs)`` takes: each layer is warmed in turn, bottom first, on what
    it receives there, and the result is ``{path of the layer: its history}``. Only the recurrent layers'
    parameters change (never a readout or what lies outside them).

    Defaults are the official code's, except ``drop_last``: when n is not a multiple of ``batch_size``,
    each pass over ``inputs`` drops its last, smaller batch; the official code keeps it (its DataLoader's
    default), as ``drop_last=False`` does. (`longrnn train --warmup` draws ``batch_size × steps`` fresh
    sequences, so it has no such batch.) ``partial`` only matters for double layers (warm the first half).
    History: ``loss``, ``vaa_star`` (one list of per-layer values per step), ``stabilization`` and
    ``time`` (seconds since the start) per step, and ``seconds`` in all. ``progress`` shows a progress bar.

    Raises:
        ValueError (`longrnn.errors.UsageError`): an option out of range, no longrnn layer in ``model``, a
            bidirectional one, or inputs that are not batched sequences.
    """
    options = (steps, lr, batch_size, eps, target, stabilization_increment, stabilization_max, partial, generator,
               progress, check_bool("drop_last", drop_last))
    return for_each_stack(_warm_up, model, inputs, *options)


def _warm_up(model, inputs: torch.Tensor, steps: int, lr: float, batch_size: int, eps: float, target: float,
             stabilization_increment: int, stabilization_max: int, partial: bool, generator, progress: bool,
             drop_last: bool) -> dict:
    _check_warmup_options(inputs, steps, lr, batch_size, eps, target, stabilization_increment, stabilization_max)
    parameters = [p for layer in model.layers for p in layer.parameters()]  # never the readout
    optimizer = torch.optim.Adam(parameters, lr=lr)
    batches = minibatches(inputs.shape[0], batch_size, generator, drop_last)
    history = {"loss": [], "vaa_star": [], "stabilization": [], "time": []}
    started = time.perf_counter()
    for step in track(range(steps), steps, "warm-up", disable=not progress):
        x = inputs[next(batches)]
        stabilization = stabilization_length(step, stabilization_increment, stabilization_max, generator)
        values = vaa_star_per_layer(model, x, stabilization, eps, partial, generator)
        if not torch.isfinite(values).all():
            raise FloatingPointError(f"VAA* is not finite at warm-up step {step}: {values.tolist()}")
        loss = (values - target).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["loss"].append(loss.item())
        history["vaa_star"].append(values.detach().tolist())
        history["stabilization"].append(stabilization)
        history["time"].append(time.perf_counter() - started)
    history["seconds"] = time.perf_counter() - started
    return history
