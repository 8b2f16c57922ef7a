"""Bistable recurrent cells: ``brc`` and ``nbrc`` (Vecoven, Ernst & Drion 2021, "A bio-inspired bistable
recurrent cell allows for long-lasting memory", PLoS ONE 16(6): e0252676, arXiv:2006.05252).

Both cells compute

    c = σ(U_c x + m_c + b_c)                   the keep gate: c near 1 holds the state
    a = 1 + tanh(U_a x + m_a + b_a)            the feedback gain, in (0, 2)
    h' = c ⊙ h + (1 - c) ⊙ tanh(U_h x + a ⊙ h + b_h)

where the recurrent terms m are elementwise for the BRC (m = w ⊙ h: each unit feeds back only to
itself) and full matrices for the nBRC (m = W h: "recurrently neuromodulated"). The candidate uses
a ⊙ h, never a matrix, in both. A unit with a > 1 is bistable, which is why these cells can hold
information indefinitely, and can be multistable already at initialisation.

Initialisation and biases follow the code of the warm-up paper (Lambrechts et al., Neural Networks
2023, github glambrechts/warmup, ``models_pytorch/cells.py``): every input matrix U (and, for the nBRC,
W_c and W_a) is Xavier-uniform per gate block, the BRC memory vectors w_c = w_a = 1, all biases 0
(including b_h, which the original TensorFlow BRC code does not have).

Parameters: ``weight_ih`` (3H, I) with blocks c, a, h; ``bias`` (3H); the BRC has ``memory_c`` and
``memory_a`` (H); the nBRC has ``weight_hh`` (2H, H) with blocks c, a. State: a (batch, H) tensor,
which is also the output. ``forget_gate_values`` returns c, so the gate diagnostics apply.

``engine`` (auto | triton): how a whole sequence runs, speed only. ``auto`` runs the Triton kernels on a
CUDA device where the ``gpu`` extra is installed (with gradients that can be differentiated again) and
the step loop elsewhere; ``triton`` one Triton launch forward and one backward (`longrnn.cells.kernel_sequences`;
float32/float64 on a CUDA device, the ``gpu`` extra).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from longrnn.cells.base import Cell, autocast_enabled, zero_state
from longrnn.cells.init import xavier_uniform_blocks
from longrnn.cells.kernel_sequences import bistable_sequence, kernel_engine
from longrnn.cells.registry import register
from longrnn.errors import unknown

ENGINES = ("auto", "triton")


class _BistableCell(Cell):
    """Shared parts: input projection, keep gate, feedback gain and update; subclasses give the
    recurrent gate terms m_c, m_a."""

    def __init__(self, input_size: int, hidden_size: int, engine: str = "auto"):
        super().__init__()
        if engine not in ENGINES:
            raise unknown("engine", engine, ENGINES)
        self.engine = engine
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.bias = nn.Parameter(torch.zeros(3 * hidden_size))
        xavier_uniform_blocks(self.weight_ih, 3)

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.weight_ih, device, dtype)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """U x + b for the blocks c, a, h at once: (..., I) -> (..., 3H)."""
        return F.linear(x, self.weight_ih, self.bias)

    def recurrent_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m_c, m_a): the recurrent contributions to the keep gate and the feedback gain."""
        raise NotImplementedError

    def gates(self, x_proj: torch.Tensor, h: torch.Tensor):
        """c (keep gate), a (feedback gain) and the candidate's input part U_h x + b_h."""
        x_c, x_a, x_h = x_proj.chunk(3, -1)
        m_c, m_a = self.recurrent_terms(h)
        c = torch.sigmoid(x_c + m_c)
        a = 1.0 + torch.tanh(x_a + m_a)
        return c, a, x_h

    def forget_gate_values(self, x_proj: torch.Tensor, prev_state: torch.Tensor) -> torch.Tensor:
        """c for every step at once, from projected inputs and the states before each step."""
        return self.gates(x_proj, prev_state)[0]

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        c, a, x_h = self.gates(x_proj, state)
        h = c * state + (1.0 - c) * torch.tanh(x_h + a * state)
        return h, h

    def recurrent_parameter(self) -> tuple[torch.Tensor, bool]:
        """(the recurrent parameter as the Triton kernel takes it, whether it is elementwise)."""
        raise NotImplementedError

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """With engine triton, or auto on a CUDA device (`kernel_engine`), outside autocast and torch.compile's
        tracing: the whole sequence as one Triton launch forward and one backward; otherwise None, and the
        step loop runs."""
        engine = kernel_engine(self.engine, x.device, cpp=False)
        if engine is None or autocast_enabled(x.device) or torch.compiler.is_compiling():
            return None
        return bistable_sequence(self.project_input(x.transpose(0, 1)), state, *self.recurrent_parameter(),
                                 twice_differentiable=self.engine == "auto")


@register("brc", "bistable recurrent cell, elementwise feedback (Vecoven et al. 2021); warm-up paper init")
class BRCCell(_BistableCell):
    """BRC: m_c = w_c ⊙ h, m_a = w_a ⊙ h with memory vectors w_c, w_a (initialised to 1)."""

    def __init__(self, input_size: int, hidden_size: int, engine: str = "auto"):
        super().__init__(input_size, hidden_size, engine)
        self.memory_c = nn.Parameter(torch.ones(hidden_size))
        self.memory_a = nn.Parameter(torch.ones(hidden_size))

    def recurrent_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.memory_c * h, self.memory_a * h

    def recurrent_parameter(self) -> tuple[torch.Tensor, bool]:
        return torch.cat([self.memory_c, self.memory_a]), True


@register("nbrc", "recurrently neuromodulated BRC, full gate matrices (Vecoven et al. 2021); warm-up paper init")
class NBRCCell(_BistableCell):
    """nBRC: m_c = W_c h, m_a = W_a h with full (H, H) matrices (Xavier-uniform each)."""

    def __init__(self, input_size: int, hidden_size: int, engine: str = "auto"):
        super().__init__(input_size, hidden_size, engine)
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        xavier_uniform_blocks(self.weight_hh, 2)

    def recurrent_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m_c, m_a = F.linear(h, self.weight_hh).chunk(2, -1)
        return m_c, m_a

    def recurrent_parameter(self) -> tuple[torch.Tensor, bool]:
        return self.weight_hh, False
