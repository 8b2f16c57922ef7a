"""A cell's step loop captured as CUDA graphs (``engine="graph"``), for the cells that have no fused kernel.

On a GPU a step loop of small operations is bound by launches: every step launches a dozen kernels from
Python. A CUDA graph records the launches of one whole sequence once and replays them as one. The cells
here keep their own step (`Cell.step`); `graphed_sequence` records it for one input signature (shapes,
dtypes, which tensors require gradients, training or evaluation, gradients on or off) and replays the
recording afterwards:

* with gradients on: `torch.cuda.make_graphed_callables`, which records the forward and the backward of
  the loop (the cell's parameters included) and wraps them in one autograd function;
* with gradients off (evaluation): the forward alone, recorded with `torch.cuda.graph`.

A recording reads the parameters' memory when it replays, so an optimizer's in-place updates are seen;
parametrized weights (the orthogonal matrix, the convolutional exponential's spectrum) are recomputed
inside the recording, once per sequence (`torch.nn.utils.parametrize.cached`). A replay writes into the
same output buffers every time, so the results are copied out before they are returned. At most
`MAX_GRAPHS` signatures are recorded per cell (each holds its own memory pool); beyond them, and under
autocast or torch.compile's tracing, the ordinary step loop runs. Tested equal to the step loop on a GPU
(`tests/test_graphs.py`, skipped without one).
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import nn
from torch.nn.utils import parametrize

from longrnn.cells.base import Cell, State, autocast_enabled
from longrnn.errors import UsageError

GRAPH_ENGINES = ("auto", "graph")  # auto: the step loop; graph: the step loop replayed from CUDA graphs
MAX_GRAPHS = 4
# a cell's recordings by input signature, beside the cell rather than on it: a copied or pickled cell
# carries none, and they go when the cell goes (a recording refers to the cell only weakly)
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _StepLoop(nn.Module):
    """The plain step loop of ``cell`` as a module of tensors only: (x, *state) -> (outputs, *final state);
    its parameters are the cell's (what `torch.cuda.make_graphed_callables` differentiates)."""

    def __init__(self, cell: Cell, tuple_state: bool):
        super().__init__()
        self._cell = weakref.ref(cell)
        self.tuple_state = tuple_state
        self.train(cell.training)

    def parameters(self, recurse: bool = True):
        return self._cell().parameters(recurse)

    def forward(self, x: torch.Tensor, *state: torch.Tensor):
        cell = self._cell()
        state = tuple(state) if self.tuple_state else state[0]
        outputs = []
        with parametrize.cached():
            for xp in cell.project_input(x).unbind(1):  # unbind: backward stays O(T)
                h, state = cell.step(xp, state)
                outputs.append(h)
        return (torch.stack(outputs, 1), *(state if self.tuple_state else (state,)))


def check_graph_device(device: torch.device | str) -> None:
    """UsageError unless ``device`` is a CUDA device (engine 'graph' records CUDA graphs)."""
    kind = torch.device(device).type
    if kind != "cuda":
        raise UsageError(f"engine 'graph' records CUDA graphs and runs on a CUDA device, not on {kind!r}; "
                         "use engine 'auto'")


def graphed_sequence(cell: Cell, x: torch.Tensor, state: State):
    """``cell`` over ``x`` (batch, time, input) from ``state``, replayed from a CUDA graph: ``(outputs (batch,
    time, output), final state)`` equal to the step loop's, or None where no graph applies (autocast,
    torch.compile's tracing, more than `MAX_GRAPHS` signatures; the caller then runs the step loop).
    UsageError off a CUDA device."""
    check_graph_device(x.device)
    if autocast_enabled(x.device) or torch.compiler.is_compiling():
        return None
    tuple_state = isinstance(state, tuple)
    flat = state if tuple_state else (state,)
    grad = torch.is_grad_enabled()
    key = (grad, cell.training, *((tuple(t.shape), t.dtype, t.device, t.requires_grad) for t in (x, *flat)))
    graphs = _GRAPHS.setdefault(cell, {})
    if key not in graphs:
        if len(graphs) - ("full" in graphs) >= MAX_GRAPHS:
            if "full" not in graphs:
                graphs["full"] = True
                warnings.warn(f"engine 'graph': {MAX_GRAPHS} input shapes are already recorded for this cell; "
                              "further shapes run the step loop", stacklevel=3)
            return None
        loop = _StepLoop(cell, tuple_state)
        graphs[key] = _record_with_backward(loop, x, flat) if grad else _record_forward(loop, x, flat)
    outputs, *final = (t.clone() for t in graphs[key](x, *flat))  # the next replay overwrites the buffers
    return outputs, tuple(final) if tuple_state else final[0]


def _samples(tensors):
    """Fresh tensors like ``tensors`` (same requires_grad), for a recording's static inputs."""
    return tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in tensors)


def _record_with_backward(loop: _StepLoop, x, flat):
    """The loop's forward and backward recorded by `torch.cuda.make_graphed_callables` (it warms up on a
    side stream first); returns the graphed callable."""
    return torch.cuda.make_graphed_callables(loop, _samples((x, *flat)))


def _record_forward(loop: _StepLoop, x, flat):
    """The loop's forward alone, recorded after two warm-up runs on a side stream; returns a function that
    copies its arguments into the recording's inputs and replays it."""
    inputs = _samples((x, *flat))
    side = torch.cuda.Stream(device=x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        for _ in range(2):
            loop(*inputs)
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = loop(*inputs)

    def replay(*args):
        for static, given in zip(inputs, args):
            static.copy_(given)
        graph.replay()
        return outputs

    return replay
