"""Initialisations shared by cells.

``xavier_uniform_blocks``: Xavier-uniform per gate block of a stacked weight (the bistable cells and the
MGU, as the warm-up paper's code initialises them); ``orthogonal_blocks``: an orthogonal matrix per block
(the recurrent weights of that code's GRU). ``np_input_scale`` and ``np_recurrent_matrix``: Talathi &
Vartak's npRNN draws (arXiv:1511.03771), which the rPLRNN benchmark code also uses for the PLRNN's C.

The forget-gate (LSTM) / update-gate (GRU) bias, ``forget_init=`` of the gated cells; each returns
biases in sigmoid space, b with initial gate value σ(b) (the cell maps them into its gate's space with
`longrnn.functional.gates.gate_bias` when ``gate_parity`` is on):

* ``default``          PyTorch's uniform(-1/√H, 1/√H) init is left as it is.
* ``constant:VALUE``   b = VALUE for every unit (VALUE = 1 is the classic forget bias of Gers et al. 2000
                        and Jozefowicz et al. 2015).
* ``chrono:T_MAX``     b ~ log U[1, T_MAX - 1] (Tallec & Ollivier, "Can recurrent neural networks warp
                        time?", ICLR 2018): time scales 1/(1 - f) ≈ e^b spread over [2, T_MAX]; the LSTM
                        input-gate bias is set to -b.
* ``uniform``          b = σ⁻¹(u), u ~ U[1/H, 1 - 1/H] (Gu et al., ICML 2020, "uniform gate
                        initialisation", part of the UR-LSTM): gate values spread evenly over (0, 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from longrnn.errors import UsageError


def xavier_uniform_blocks(weight: torch.Tensor, n_blocks: int) -> None:
    """Xavier-uniform initialisation of each of the ``n_blocks`` row blocks of ``weight`` on its own."""
    with torch.no_grad():
        for block in weight.chunk(n_blocks, 0):
            nn.init.xavier_uniform_(block)


def orthogonal_blocks(weight: torch.Tensor, n_blocks: int) -> None:
    """An orthogonal matrix (`torch.nn.init.orthogonal_`) in each of the ``n_blocks`` row blocks of ``weight``."""
    with torch.no_grad():
        for block in weight.chunk(n_blocks, 0):
            nn.init.orthogonal_(block)


FORMS = "default, constant:VALUE, chrono:T_MAX, uniform"


def parse_forget_init(spec: str) -> tuple[str, float | None]:
    """``"chrono:1000"`` -> ``("chrono", 1000.0)``; a bad spec is a UsageError naming the allowed forms."""
    kind, _, arg = str(spec).partition(":")
    if kind in ("default", "uniform") and not arg:
        return kind, None
    if kind in ("constant", "chrono") and arg:
        try:
            value = float(arg)
        except ValueError:
            value = math.nan
        if kind == "constant" and math.isfinite(value):
            return kind, value
        if kind == "chrono" and 2 < value < 1e30:  # float32 biases log(T_MAX) stay finite
            return kind, value
    raise UsageError(f"unknown forget_init {spec!r}; allowed: {FORMS} (chrono needs a finite T_MAX > 2)")


def forget_biases(spec: str, hidden_size: int) -> torch.Tensor | None:
    """(hidden_size,) sigmoid-space biases for ``spec``, or None for ``default``. Uses torch's global RNG."""
    kind, value = parse_forget_init(spec)
    if kind == "default":
        return None
    if kind == "constant":
        return torch.full((hidden_size,), value)
    if kind == "chrono":
        return torch.empty(hidden_size).uniform_(1.0, value - 1.0).log()
    d = hidden_size
    u = torch.empty(hidden_size).uniform_(1.0 / d, 1.0 - 1.0 / d) if d > 2 else torch.full((d,), 0.5)
    return torch.logit(u)


@torch.no_grad()
def write_keep_gate_bias(bias_ih: torch.Tensor, bias_hh: torch.Tensor, hidden_size: int, keep_block: int,
                         keep: torch.Tensor, companions: list[int], b: torch.Tensor) -> None:
    """Write a keep gate's bias ``keep`` into block ``keep_block`` of ``bias_hh`` and zero that block of
    ``bias_ih`` (so it is not counted twice); each block in ``companions`` gets -``b`` the same way (the
    LSTM's input gate under chrono, a refine gate). Blocks are ``hidden_size`` rows of the (n·H,) biases."""
    def block(bias, index):
        return bias[index * hidden_size:(index + 1) * hidden_size]

    block(bias_ih, keep_block).zero_()
    block(bias_hh, keep_block).copy_(keep)
    for index in companions:
        block(bias_ih, index).zero_()
        block(bias_hh, index).copy_(-b)


def np_input_scale(hidden_size: int) -> float:
    """α = sqrt(2) exp(1.2 / max(H, 6) - 2.4), Talathi & Vartak's input-weight scale."""
    return math.sqrt(2.0) * math.exp(1.2 / max(hidden_size, 6) - 2.4)


def np_recurrent_matrix(hidden_size: int) -> torch.Tensor:
    """(RᵀR/H + I) / e, R ~ N(0, 1), e its largest eigenvalue: symmetric, positive definite, spectral
    radius 1 (Talathi & Vartak's npRNN)."""
    r = torch.randn(hidden_size, hidden_size, dtype=torch.float64)
    m = r.T @ r / hidden_size + torch.eye(hidden_size, dtype=torch.float64)
    return (m / torch.linalg.eigvalsh(m).max()).float()
