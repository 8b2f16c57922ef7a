"""The minimal gated unit ``mgu`` (Zhou, Wu, Zhang & Zhou 2016, "Minimal Gated Unit for Recurrent
Neural Networks", International Journal of Automation and Computing 13(3), arXiv:1603.09420):

    f = σ(W_f x + U_f h + b_f)
    h̃ = tanh(W_h x + U_h (f ⊙ h) + b_h)
    h' = (1 - f) ⊙ h + f ⊙ h̃

One gate f plays both the GRU's reset and update roles. The state is kept where f is near 0, so the
keep gate reported by ``forget_gate_values`` (for the saturation diagnostics) is 1 - f.

Initialisation as in the warm-up paper's code (Lambrechts et al. 2023, glambrechts/warmup): Xavier-uniform
on every matrix (here each gate block on its own), zero biases. Parameters: ``weight_ih`` (2H, I) and
``weight_hh`` (2H, H) with blocks f, h; ``bias`` (2H). State: a (batch, H) tensor, also the output.

``engine``: auto (the Triton kernels on a CUDA device where the ``gpu`` extra is installed, with gradients
that can be differentiated again; the step loop elsewhere) or triton (one Triton launch forward and one
backward, `longrnn.cells.kernel_sequences`; float32/float64 on a CUDA device, the ``gpu`` extra).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from longrnn.cells.base import Cell, autocast_enabled, zero_state
from longrnn.cells.init import xavier_uniform_blocks
from longrnn.cells.kernel_sequences import kernel_engine, mgu_sequence
from longrnn.cells.registry import register
from longrnn.errors import unknown

ENGINES = ("auto", "triton")  # auto: the step loop; triton: one Triton launch forward and one backward


@register("mgu", "minimal gated unit, one gate (Zhou et al. 2016); warm-up paper init")
class MGUCell(Cell):
    """One MGU step (the module docstring's equations): state and output (batch, H); ``engine`` auto or
    triton."""

    def __init__(self, input_size: int, hidden_size: int, engine: str = "auto"):
        super().__init__()
        if engine not in ENGINES:
            raise unknown("engine", engine, ENGINES)
        self.engine = engine
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.zeros(2 * hidden_size))
        xavier_uniform_blocks(self.weight_ih, 2)
        xavier_uniform_blocks(self.weight_hh, 2)

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.weight_hh, device, dtype)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """W x + b for the blocks f, h at once: (..., I) -> (..., 2H)."""
        return F.linear(x, self.weight_ih, self.bias)

    def update_gate(self, x_f: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        U_f = self.weight_hh[: self.hidden_size]
        return torch.sigmoid(x_f + F.linear(h, U_f))

    def forget_gate_values(self, x_proj: torch.Tensor, prev_state: torch.Tensor) -> torch.Tensor:
        """The keep gate 1 - f for every step at once."""
        return 1.0 - self.update_gate(x_proj.chunk(2, -1)[0], prev_state)

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        x_f, x_h = x_proj.chunk(2, -1)
        f = self.update_gate(x_f, state)
        U_h = self.weight_hh[self.hidden_size :]
        candidate = torch.tanh(x_h + F.linear(f * state, U_h))
        h = (1.0 - f) * state + f * candidate
        return h, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """With engine triton, or auto on a CUDA device (`kernel_engine`), outside autocast and torch.compile's
        tracing: the whole sequence as one Triton launch forward and one backward; otherwise None, and the
        step loop runs."""
        engine = kernel_engine(self.engine, x.device, cpp=False)
        if engine is None or autocast_enabled(x.device) or torch.compiler.is_compiling():
            return None
        return mgu_sequence(self.project_input(x.transpose(0, 1)), state, self.weight_hh,
                            twice_differentiable=self.engine == "auto")
