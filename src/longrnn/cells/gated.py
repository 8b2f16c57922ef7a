"""Gated cells: ``lstm`` and ``gru``, with the equations and parameter layout of PyTorch.

Each cell has its own step (so its gates can be changed) and a `fused_forward` that calls torch's
whole-sequence kernel (`torch.lstm` / `torch.gru`, the ops behind `torch.nn.LSTM` / `torch.nn.GRU`)
with the cell's own parameters. The forget gate (LSTM) and update gate (GRU) go through one named
function, `gate_fn`; the fused kernels only compute the standard sigmoid gate, so `fused_forward`
returns ``None`` (the caller falls back to the step loop) whenever `gate_fn` is anything else.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from longrnn.cells import register
from longrnn.cells.base import Cell, fused_sequence, zero_state


class _GatedCell(Cell):
    """Shared parts: PyTorch's parameter layout for ``n_blocks`` stacked gate blocks and its init."""

    n_blocks: int

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        rows = self.n_blocks * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        # The forget (LSTM) / update (GRU) gate nonlinearity; the fused kernels assume the sigmoid.
        self.gate_fn = torch.sigmoid

    def reset_parameters(self) -> None:
        """uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as `torch.nn.LSTMCell` / `GRUCell`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @property
    def has_fused_kernel(self) -> bool:
        """Whether torch's fused kernel computes this cell (only with the standard sigmoid gate)."""
        return self.gate_fn is torch.sigmoid

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih for all gate blocks at once: (..., I) -> (..., n_blocks * H)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def weights(self) -> list[torch.Tensor]:
        """The parameter list in the order torch's fused ops expect."""
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]


@register("lstm", "LSTM with PyTorch's equations and layout; option forget_bias (init offset)")
class LSTMCell(_GatedCell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins
    2000), with the equations of `torch.nn.LSTMCell`:

        i = σ(W_ii x + b_ii + W_hi h + b_hi)        f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)     o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f * c + i * g                          h' = o * tanh(c')

    Parameters ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh`` (4H), gate blocks
    in the order i, f, g, o; initialised uniform(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

    ``forget_bias`` is added once, at initialisation, to the forget-gate block of ``bias_hh``
    (``bias_hh[H:2H]``); it is an ordinary learned bias afterwards, so the fused path is unchanged.
    A value of 1 is the standard trick (Gers et al. 2000; Jozefowicz, Zaremba & Sutskever 2015).
    State: the tuple ``(h, c)`` of (batch, H) tensors; output h.
    """

    n_blocks = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 0.0):
        super().__init__(input_size, hidden_size)
        self.forget_bias = float(forget_bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's uniform init, then ``forget_bias`` added to the forget block of ``bias_hh``."""
        super().reset_parameters()
        H = self.hidden_size
        with torch.no_grad():
            self.bias_hh[H : 2 * H] += self.forget_bias

    def init_state(self, batch_size: int, device=None, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
        h = zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)
        return h, torch.zeros_like(h)

    def step(self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        h, c = state
        gates = x_proj + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        forget = self.gate_fn(f)  # the forget gate: the one nonlinearity later options may swap
        c = forget * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)

    def fused_forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """The `torch.nn.LSTM` kernel with this cell's parameters, or None for a non-standard gate."""
        if not self.has_fused_kernel:
            return None
        outputs, h_n, c_n = fused_sequence(torch.lstm, x, tuple(state), self.weights(), True, self.training)
        return outputs, (h_n, c_n)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, forget_bias={self.forget_bias}"


@register("gru", "GRU with PyTorch's equations and layout (Cho et al. 2014)")
class GRUCell(_GatedCell):
    """Gated recurrent unit (Cho et al. 2014, "Learning Phrase Representations using RNN
    Encoder-Decoder"), with the equations of `torch.nn.GRUCell`:

        r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    Parameters ``weight_ih`` (3H, I), ``weight_hh`` (3H, H), ``bias_ih``, ``bias_hh`` (3H), gate blocks
    in the order r, z, n; initialised uniform(-1/sqrt(H), 1/sqrt(H)) like PyTorch.
    State: a (batch, H) tensor, which is also the output.
    """

    n_blocks = 3

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        h = state
        x_r, x_z, x_n = x_proj.chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = self.gate_fn(x_z + h_z)  # the update gate: the one nonlinearity later options may swap
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """The `torch.nn.GRU` kernel with this cell's parameters, or None for a non-standard gate."""
        if not self.has_fused_kernel:
            return None
        outputs, h_n = fused_sequence(torch.gru, x, state, self.weights(), True, self.training)
        return outputs, h_n
