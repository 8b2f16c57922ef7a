"""Simple (Elman) recurrent cells: ``rnn`` (tanh) and ``irnn`` (ReLU, identity initialisation).

Both compute

    h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

with the parameter names, shapes and equation of `torch.nn.RNNCell`; ``nonlinearity="tanh"|"relu"`` picks φ
for either (the IRNN's default is ReLU). Their `fused_forward` calls
torch's whole-sequence RNN op (`torch.rnn_tanh` / `torch.rnn_relu`, the kernel behind `torch.nn.RNN`)
directly with the cell's own parameters, so gradients reach them exactly as in the step loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from longrnn.cells.base import Cell, fused_sequence, zero_state
from longrnn.cells.init import np_input_scale, np_recurrent_matrix
from longrnn.cells.registry import register
from longrnn.errors import UsageError, check_choice

NONLINEARITIES = ("tanh", "relu")
WEIGHT_INITS = ("default", "orthogonal", "np")


@register("rnn", "Elman RNN, h = tanh(W_ih x + b_ih + W_hh h + b_hh) (torch.nn.RNNCell)")
class ElmanRNNCell(Cell):
    """Elman network (Elman 1990, "Finding Structure in Time"), PyTorch's `RNNCell` equation:

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    Parameters ``weight_ih`` (H, I), ``weight_hh`` (H, H), ``bias_ih``, ``bias_hh`` (H) — absent when
    ``bias=False``. ``weight_init``:

    * ``"default"``: like `torch.nn.RNNCell`, every parameter uniform(-1/sqrt(H), 1/sqrt(H));
    * ``"orthogonal"``: W_hh orthogonal (`torch.nn.init.orthogonal_`), zero biases, W_ih as the default —
      the oRNN of the rPLRNN benchmark code (DurstewitzLab/reg-PLRNN, ``comparison_models.py``; with
      ``nonlinearity="relu"`` and, for its penalty, ``--reg orthogonal``);
    * ``"np"``: Talathi & Vartak's npRNN (arXiv:1511.03771) as that code draws it: W_hh = (RᵀR/H + I) / e
      with R ~ N(0, 1) and e the largest eigenvalue of RᵀR/H + I, W_ih ~ α N(0, 1) / H with
      α = sqrt(2) exp(1.2 / max(H, 6) - 2.4), zero biases (with ``nonlinearity="relu"``).

    State: a (batch, H) tensor, which is also the output.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 weight_init: str = "default"):
        super().__init__()
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        self.weight_init = check_choice("weight_init", weight_init, WEIGHT_INITS)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """uniform(-1/sqrt(H), 1/sqrt(H)) for every parameter, as `torch.nn.RNNCell`; then the
        ``weight_init`` of the class docstring."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        init = getattr(self, "weight_init", "default")  # longrnn.nn.RNNCell has its own init option
        if init == "default":
            return
        with torch.no_grad():
            if init == "orthogonal":
                nn.init.orthogonal_(self.weight_hh)
            else:
                self.weight_hh.copy_(np_recurrent_matrix(self.hidden_size))
                self.weight_ih.copy_(np_input_scale(self.hidden_size) * torch.randn_like(self.weight_ih)
                                     / self.hidden_size)
            if self.bias:
                nn.init.zeros_(self.bias_ih)
                nn.init.zeros_(self.bias_hh)

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z) if self.nonlinearity == "tanh" else torch.relu(z)

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih, for any leading shape (..., I) -> (..., H)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        h = self.activation(x_proj + F.linear(state, self.weight_hh, self.bias_hh))
        return h, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """The `torch.nn.RNN` kernel on (batch, time, I) with this cell's parameters."""
        op = torch.rnn_tanh if self.nonlinearity == "tanh" else torch.rnn_relu
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        outputs, h_n = fused_sequence(op, x, state, weights, self.bias, self.training)
        return outputs, h_n

    def extra_repr(self) -> str:
        init = getattr(self, "weight_init", "default")
        return (f"{super().extra_repr()}, bias={self.bias}, nonlinearity={self.nonlinearity!r}"
                + (f", weight_init={init!r}" if init != "default" else ""))



@register("irnn", "ReLU RNN with identity-initialised recurrent matrix (Le, Jaitly & Hinton 2015)")
class IRNNCell(ElmanRNNCell):
    """IRNN (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
    Linear Units", arXiv:1504.00941):

        h_t = relu(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    initialised with W_hh = init_scale * I (the paper uses the identity, or a scaled identity),
    zero biases and W_ih ~ N(0, input_std²), input_std = 0.001 by default (the paper's "N(0, 0.001)",
    read as a standard deviation). The rPLRNN paper's benchmark code (DurstewitzLab/reg-PLRNN,
    ``comparison_models.py``) draws W_ih = randn / M instead: ``input_std=1/M`` (0.025 for its M = 40).
    Same parameters, state and fused path (`torch.nn.RNN(nonlinearity="relu")`) as the ``rnn`` cell.
    """

    input_std = 0.001  # Le et al.'s (what `longrnn.nn.RNNCell(init="identity")` uses); an instance's replaces it

    def __init__(self, input_size: int, hidden_size: int, init_scale: float = 1.0, bias: bool = True,
                 nonlinearity: str = "relu", input_std: float = 0.001):
        self.init_scale = float(init_scale)
        if isinstance(input_std, bool) or not isinstance(input_std, (int, float)) or not 0 <= input_std < math.inf:
            raise UsageError(f"input_std must be a finite number >= 0, got {input_std!r}")
        self.input_std = float(input_std)
        super().__init__(input_size, hidden_size, bias=bias, nonlinearity=nonlinearity)

    def reset_parameters(self) -> None:
        """W_hh = init_scale * I, W_ih ~ N(0, input_std²), biases 0 (Le et al. 2015, section 3)."""
        with torch.no_grad():
            self.weight_hh.copy_(self.init_scale * torch.eye(self.hidden_size))
            nn.init.normal_(self.weight_ih, 0.0, self.input_std)
            if self.bias:
                nn.init.zeros_(self.bias_ih)
                nn.init.zeros_(self.bias_hh)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init_scale={self.init_scale}, input_std={self.input_std}"
