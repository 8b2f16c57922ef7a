"""The Cell protocol shared by every recurrent cell.

A cell computes one time step and never loops over time itself:

    h_t, state_t = cell(x_t, state_{t-1})          # x_t: (batch, input_size)

`state` is a tensor or a tuple of tensors (e.g. ``(h, c)`` for the LSTM); `h_t` has `output_size`
features. The loop lives in `longrnn.models.Recurrent`, which splits the step in two so the input
projection is computed once for the whole sequence (one large matmul instead of T small ones):

    xp = cell.project_input(x)                      # (batch, time, ...) all at once
    for xp_t in xp.unbind(1):                       # unbind: backward stays O(T)
        h_t, state = cell.step(xp_t, state)

`forward(x_t, state)` is ``step(project_input(x_t), state)``, so a cell is also usable on its own.
A cell may offer `fused_forward(x, state) -> (outputs, final_state)`, a whole-sequence kernel
(e.g. the fused `torch.nn.LSTM`); it returns ``None`` when its options have no such kernel.
"""

from __future__ import annotations

import torch
from torch import nn

State = torch.Tensor | tuple[torch.Tensor, ...]


class Cell(nn.Module):
    """Base class: subclasses set the sizes and implement `init_state` and `step`."""

    input_size: int
    hidden_size: int
    output_size: int

    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        """The state before the first step, for ``batch_size`` sequences: a tensor or tuple of tensors, each
        (batch_size, ...) (zeros for most cells); ``device``/``dtype`` default to the parameters'."""
        raise NotImplementedError

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """Everything of the step that depends on the input only; works on (..., input_size)."""
        return x

    def step(self, x_proj: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step: ``x_proj`` is `project_input` of the step's input (batch, ...), ``state`` the
        previous state; returns (h_t (batch, output_size), the new state, shaped as `init_state`'s)."""
        raise NotImplementedError

    def forward(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step on a raw input ``x_t`` (batch, input_size): ``step(project_input(x_t), state)``."""
        return self.step(self.project_input(x_t), state)

    def fused_forward(self, x: torch.Tensor, state: State):
        """A whole-sequence kernel giving the same result as the step loop, or None if there is none."""
        return

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (e.g. from autocast or a ``.half()`` module) -> float32; float32, float64 and
    complex tensors stay as they are. Gates, FFTs and states are computed in at least float32."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def autocast_enabled(device: torch.device | str) -> bool:
    """Whether ``torch.autocast`` is on for ``device``'s type (False for types it does not know, e.g. meta)."""
    try:
        return torch.is_autocast_enabled(torch.device(device).type)
    except RuntimeError:
        return False


def allowed_dtypes(weight: torch.Tensor, device: torch.device) -> set[torch.dtype]:
    """The dtypes an input or state may have for a module whose parameters are like ``weight``: theirs, and
    autocast's lower precision while autocast is on for ``device``."""
    allowed = {weight.dtype}
    if autocast_enabled(device):
        allowed.add(torch.get_autocast_dtype(torch.device(device).type))
    return allowed


def in_dtype(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``t`` in the input ``x``'s dtype: cells compute gates and states in at least float32 (e.g. in a
    ``.half()`` module), and a torch module returns what it was given. Under autocast, and for complex
    states, ``t`` as is."""
    if t.is_complex() or t.dtype == x.dtype or autocast_enabled(x.device):
        return t
    return t.to(x.dtype)


def map_state(fn, state: State) -> State:
    """Apply ``fn`` to every tensor of a state (a tensor or a tuple of tensors)."""
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


def detach_state(state: State) -> State:
    """Cut the graph at a state, e.g. between truncated-BPTT chunks."""
    return map_state(torch.Tensor.detach, state)


def stack_states(states: list[State], dim: int = 1) -> State:
    """Stack a list of per-step states into one state whose tensors have a time axis at ``dim``."""
    if isinstance(states[0], tuple):
        return tuple(torch.stack(parts, dim) for parts in zip(*states))
    return torch.stack(states, dim)


def zero_state(batch_size: int, hidden_size: int, like: torch.Tensor, device=None, dtype=None):
    """A (batch, hidden) zero tensor; device and dtype default to those of ``like`` (a parameter)."""
    device = like.device if device is None else device
    dtype = like.dtype if dtype is None else dtype
    return torch.zeros(batch_size, hidden_size, device=device, dtype=dtype)


def fused_sequence(op, x: torch.Tensor, hx, weights: list[torch.Tensor], has_biases: bool, training: bool):
    """Run one of torch's fused single-layer RNN ops (`torch.lstm`, `torch.gru`, `torch.rnn_tanh`, ...).

    ``x`` is (batch, time, input); ``hx`` is a (batch, hidden) tensor or a tuple of them. Returns the
    op's result with the layer axis removed from the final state(s): ``(outputs, h_n, ...)``.
    """
    hx = tuple(h.unsqueeze(0) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(0)
    # Arguments: has_biases, num_layers, dropout, train, bidirectional, batch_first.
    outputs, *final = op(x, hx, weights, has_biases, 1, 0.0, training, False, True)
    return (outputs, *(h.squeeze(0) for h in final))
