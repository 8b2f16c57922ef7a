"""A cell's step loop captured as CUDA graphs (``engine="graph"``), for the cells that have no fused kernel.

On a GPU a step loop of small operations is bound by launches: every step launches a dozen kernels from
Python. A CUDA graph records the launches of one whole sequence once and replays them as one. The cells
here keep their own step (`Cell.step`); `graphed_sequence` records it for one input signature (shapes,
dtypes, which tensors require gradients, training or evaluation, gradients on or off, the parameters'
memory) and replays the recording afterwards:

* with gradients on: `torch.cuda.make_graphed_callables`, which records the forward and the backward of
  the loop and wraps them in one autograd function;
* with gradients off (evaluation): the forward alone, recorded with `torch.cuda.graph`.

What a recording must not contain, and how it is kept out:

* parametrized weights (the orthogonal matrix by matrix_exp, the convolutional exponential's spectrum)
  are computed before the replay, under autograd, and enter the recording as inputs: their maps copy
  values to the host (matrix_exp's norm, linalg.solve's error check), which a capture cannot hold. They
  reach the step through `torch.nn.utils.parametrize`'s cache (`_injected`; a test holds that mechanism);
* a replay overwrites the activations the previous replay's backward needs, so a recording is not
  replayed again while an earlier replay still awaits its backward (the step loop runs instead);
* torch returns a recording's parameter gradients in buffers that the next replay overwrites, and a
  parameter whose ``.grad`` is None takes such a buffer over; so a recording runs only while every
  parameter's ``.grad`` is None (the usual ``zero_grad()``), and gradient accumulation over several
  backward passes runs the step loop from the second pass on;
* inside ``torch.utils.checkpoint`` (saved-tensor hooks active: its forward and its recomputation) the
  step loop runs, so the recomputation sees what the forward saw.

A replay writes into the same output buffers every time, so the results are copied out before they are
returned. At most `MAX_GRAPHS` signatures are recorded per cell (each holds its own memory pool); beyond
them, and under autocast or torch.compile's tracing, the ordinary step loop runs. Tested equal to the step
loop on a GPU (`tests/test_graphs.py`, skipped without one).
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

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


def parametrized(cell: Cell) -> list[tuple[nn.Module, str]]:
    """(module, tensor name) of every parametrized tensor of ``cell``."""
    return [(m, name) for m in cell.modules() if parametrize.is_parametrized(m) for name in m.parametrizations]


class _injected:
    """Within it, each (module, name) of ``slots`` reads as the given tensor instead of computing its
    parametrization (torch's parametrize cache, filled by hand)."""

    def __init__(self, slots, values):
        self.slots, self.values = slots, values
        self.cached = parametrize.cached()

    def __enter__(self):
        self.cached.__enter__()
        for (module, name), value in zip(self.slots, self.values):
            parametrize._cache[(id(module), name)] = value

    def __exit__(self, *exc):
        return self.cached.__exit__(*exc)


class _StepLoop(nn.Module):
    """The plain step loop of ``cell`` as a module of tensors only: (x, *state, *parametrized values) ->
    (outputs, *final state); its parameters are the cell's other parameters (what
    `torch.cuda.make_graphed_callables` differentiates besides its inputs)."""

    def __init__(self, cell: Cell, tuple_state: bool, n_state: int):
        super().__init__()
        self._cell = weakref.ref(cell)
        self.tuple_state, self.n_state = tuple_state, n_state
        self.slots = parametrized(cell)  # the cell's submodules, not the cell: no cycle through the recording
        self.train(cell.training)

    def parameters(self, recurse: bool = True):
        return (p for name, p in self._cell().named_parameters() if ".parametrizations." not in f".{name}")

    def forward(self, x: torch.Tensor, *tensors: torch.Tensor):
        cell = self._cell()
        state, values = tensors[: self.n_state], tensors[self.n_state :]
        state = tuple(state) if self.tuple_state else state[0]
        outputs = []
        with _injected(self.slots, values):
            for xp in cell.project_input(x).unbind(1):  # unbind: backward stays O(T)
                h, state = cell.step(xp, state)
                outputs.append(h)
        return (torch.stack(outputs, 1), *(state if self.tuple_state else (state,)))


@dataclass
class _Recording:
    run: object  # the graphed callable, or the forward replay
    pending: bool = False  # a replay under autograd still awaits its backward


def check_graph_device(device: torch.device | str) -> None:
    """UsageError unless ``device`` is a CUDA device (engine 'graph' records CUDA graphs)."""
    kind = torch.device(device).type
    if kind != "cuda":
        raise UsageError(f"engine 'graph' records CUDA graphs and runs on a CUDA device, not on {kind!r}; "
                         "use engine 'auto'")


def _saved_tensor_hooks_active() -> bool:
    """Whether saved-tensor hooks are set (torch.utils.checkpoint's forward and recomputation)."""
    try:
        return torch._C._autograd._top_saved_tensors_default_hooks(False) is not None
    except (AttributeError, RuntimeError):  # a torch without the query: assume none
        return False


def graphed_sequence(cell: Cell, x: torch.Tensor, state: State):
    """``cell`` over ``x`` (batch, time, input) from ``state``, replayed from a CUDA graph: ``(outputs (batch,
    time, output), final state)`` equal to the step loop's, or None where no recording applies (see the
    module docstring; the caller then runs the step loop). UsageError off a CUDA device."""
    check_graph_device(x.device)
    grad = torch.is_grad_enabled()
    if autocast_enabled(x.device) or torch.compiler.is_compiling() or _saved_tensor_hooks_active():
        return None
    named = list(cell.named_parameters())
    if grad and any(p.grad is not None for _, p in named):
        return None
    tuple_state = isinstance(state, tuple)
    flat = state if tuple_state else (state,)
    values = [getattr(m, name) for m, name in parametrized(cell)]  # computed here, under autograd
    key = (grad, torch.is_inference_mode_enabled(), cell.training,
           *((name, p.data_ptr(), p.requires_grad) for name, p in named),
           *((tuple(t.shape), t.dtype, t.device, t.requires_grad) for t in (x, *flat, *values)))
    recordings = _GRAPHS.setdefault(cell, {})
    recording = recordings.get(key)
    if recording is None:
        if len(recordings) >= MAX_GRAPHS:
            _warn_full(cell)
            return None
        loop = _StepLoop(cell, tuple_state, len(flat))
        inputs = (x, *flat, *values)
        recording = recordings[key] = _Recording(_record_with_backward(loop, inputs) if grad
                                                 else _record_forward(loop, inputs))
    if recording.pending:
        return None
    raw = recording.run(x, *flat, *values)
    if raw[0].grad_fn is not None:  # until its backward has run (or its graph is dropped) the recording waits
        recording.pending = True
        done = _clearer(recording)
        raw[0].grad_fn.register_hook(lambda *_: done())
        weakref.finalize(raw[0].grad_fn, done)
    outputs, *final = (t.clone() for t in raw)  # the next replay overwrites the buffers
    return outputs, tuple(final) if tuple_state else final[0]


def _clearer(recording: _Recording):
    def clear():
        recording.pending = False
    return clear


def _warn_full(cell: Cell) -> None:
    """Warn once per cell that its recordings are full."""
    if not getattr(cell, "_graphs_full_warned", False):
        object.__setattr__(cell, "_graphs_full_warned", True)
        warnings.warn(f"engine 'graph': {MAX_GRAPHS} input shapes are already recorded for this cell; further "
                      "shapes run the step loop", stacklevel=3)


def _samples(tensors):
    """Fresh tensors like ``tensors`` (same requires_grad), for a recording's static inputs."""
    return tuple(t.detach().clone().requires_grad_(t.requires_grad) for t in tensors)


def _record_with_backward(loop: _StepLoop, inputs):
    """The loop's forward and backward recorded by `torch.cuda.make_graphed_callables` (it warms up on a
    side stream first); returns the graphed callable."""
    return torch.cuda.make_graphed_callables(loop, _samples(inputs))


def _record_forward(loop: _StepLoop, given):
    """The loop's forward alone, recorded after two warm-up runs on a side stream; returns a function that
    copies its arguments into the recording's inputs and replays it."""
    inputs = _samples(given)
    device = inputs[0].device
    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            loop(*inputs)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = loop(*inputs)

    def replay(*args):
        for static, given in zip(inputs, args):
            static.copy_(given)
        graph.replay()
        return outputs

    return replay
