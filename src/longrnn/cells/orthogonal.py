"""An RNN whose recurrent matrix is kept orthogonal: the ``orthogonal`` cell (an expRNN-style baseline).

    h_t = σ(W_in x_t + W h_{t-1} + b),    W orthogonal

After Lezcano-Casado & Martínez-Rubio 2019, "Cheap Orthogonal Constraints in Neural Networks: A Simple
Parametrization of the Orthogonal and Unitary Group" (expRNN): W is the image of an unconstrained
matrix under a map onto the orthogonal group, here `torch.nn.utils.parametrizations.orthogonal`
(matrix exponential, Cayley transform or Householder product), so plain gradient steps keep W
orthogonal. The default nonlinearity is modReLU (Arjovsky, Shah & Bengio 2016, "Unitary Evolution
Recurrent Neural Networks"), as in expRNN.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations

from longrnn.cells.base import Cell, zero_state
from longrnn.cells.graphs import GRAPH_ENGINES, graphed_sequence
from longrnn.cells.modrelu import ModReLU
from longrnn.cells.registry import register
from longrnn.errors import check_choice, unknown

ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")
NONLINEARITIES = ("modrelu", "tanh")


@register("orthogonal", "RNN with an orthogonal recurrent matrix and modReLU (expRNN-style)")
class OrthogonalRNNCell(Cell):
    """Orthogonal RNN (Lezcano-Casado & Martínez-Rubio 2019; modReLU: Arjovsky et al. 2016):

        h_t = σ(W_in x_t + W h_{t-1} + b),    W = orthogonal_map(A),  A unconstrained

    Submodules: ``input_kernel`` = nn.Linear(I, H) holding W_in, and ``recurrent_kernel`` =
    nn.Linear(H, H, bias=False) holding W, parametrized with
    `torch.nn.utils.parametrizations.orthogonal` (``orthogonal_map``: matrix_exp, cayley or
    householder). W starts as a random orthogonal matrix (torch's QR of the Linear's default init).

    Where b lives: with ``nonlinearity="modrelu"`` it is the modReLU bias (``activation.bias``) and the
    input projection has no bias, as in expRNN; with ``"tanh"`` it is ``input_kernel.bias``.
    No fused kernel; ``engine="graph"`` replays the step loop from CUDA graphs (`longrnn.cells.graphs`; a
    CUDA device; ``auto``, the default, runs the step loop). State: a (batch, H) tensor, which is also
    the output. In a ``.half()`` module W stays float32 (see `_apply`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        nonlinearity: str = "modrelu",
        orthogonal_map: str = "matrix_exp",
        engine: str = "auto",
    ):
        super().__init__()
        if engine not in GRAPH_ENGINES:
            raise unknown("engine", engine, GRAPH_ENGINES)
        self.engine = engine
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, NONLINEARITIES)
        self.orthogonal_map = check_choice("orthogonal_map", orthogonal_map, ORTHOGONAL_MAPS)
        modrelu = nonlinearity == "modrelu"
        self.input_kernel = nn.Linear(input_size, hidden_size, bias=not modrelu)
        self.recurrent_kernel = nn.Linear(hidden_size, hidden_size, bias=False)
        parametrizations.orthogonal(self.recurrent_kernel, orthogonal_map=orthogonal_map)
        self.activation = ModReLU(hidden_size) if modrelu else nn.Tanh()

    @property
    def recurrent_weight(self) -> torch.Tensor:
        """The orthogonal matrix W (H, H)."""
        return self.recurrent_kernel.weight

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return zero_state(batch_size, self.hidden_size, self.input_kernel.weight, device, dtype)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """W_in x (+ b for tanh), for any leading shape (..., I) -> (..., H)."""
        return self.input_kernel(x)

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        recurrent = self.recurrent_kernel(state.to(self.recurrent_weight.dtype))
        h = self.activation(x_proj + recurrent)
        return h, h

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """With engine graph, the step loop replayed from CUDA graphs (`graphed_sequence`); else None."""
        return graphed_sequence(self, x, state) if self.engine == "graph" else None

    def _apply(self, fn, recurse=True):
        """``.half()`` / ``.bfloat16()`` leave the orthogonal matrix in float32: torch's matrix_exp has no
        finite half-precision backward, and an orthogonal matrix rounded to 8 bits is no longer orthogonal."""
        super()._apply(fn, recurse)
        if self.recurrent_kernel.parametrizations.weight.original.dtype in (torch.float16, torch.bfloat16):
            self.recurrent_kernel.float()
        return self

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}, "
            f"orthogonal_map={self.orthogonal_map!r}"
        )
