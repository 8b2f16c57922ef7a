"""Penalties added to the training loss: the manifold-attractor regularisation of the rPLRNN.

Schmidt, Koppe, Monfared, Beutelspacher & Durstewitz, ICLR 2021, pull the first M_reg = int(M * fraction)
units of a PLRNN towards perfect integrators (A_ii = 1, W_i: = 0, h_i = 0), so that they can hold a
value for arbitrarily long. As their code (``DurstewitzLab/reg-PLRNN``, ``regularization_loss`` with
scheme "R") computes it — means, not sums, and h weighted by τ_W:

    L_reg = τ_A · mean_{i<P} (A_ii − 1)²  +  τ_W · mean_{i<P, all j} W_ij²  +  τ_W · mean_{i<P} h_i²

The W mean runs over the P full rows of the stored M×M matrix, its (unused, zero) diagonal included,
so it divides by P·M. Only the rows (incoming weights) of the regularised units are penalised; their
columns (their influence on the other units) are free. Other code bases use sums or other units
(research/rplrnn.md §6): τ values do not carry over between them.

The official code's other choices (``training.py``, ``W_regularization_mask`` and ``regularization_loss``)
are options here: ``scheme`` picks the W entries, ``"rows"`` W[:P, :] (its "R", the paper's and the
default), ``"columns"`` W[:, :P] (its "L", the default of its constructor that its configs override) or
``"full"`` all of W (its "F"); the mean runs over the entries picked. ``tau_c`` adds
τ_C · mean_{i<P, all k} C_ik², pulling the regularised units' input weights to 0 (official default 0, "not
used"). A and h are penalised on the first P units whatever the scheme.

The official benchmark's other models add their own penalties (``regularization_loss``), here as other
values of ``train.reg``, each with the initialisation of the same model (`longrnn.cells.plrnn`,
`longrnn.cells.simple`):

* ``"l2"`` (its L2PLRNN, with ``init="l2"``): as ``"mar"`` but pulling A_ii to 0 instead of 1 —
  τ_A · mean_{i<P} A_ii² + τ_W · mean(W entries of the scheme)² + τ_W · mean_{i<P} h_i² (+ the τ_C term);
* ``"l4"`` (its L2PLRNN2): τ_A · mean_{i<P} A_ii⁴ + τ_W · mean_{i,j<P} W_ij⁴ + τ_W · mean_{i<P} h_i⁴
  (the code's ``mse_loss(x**2, 0)``; W's block of the regularised units among themselves, whatever the
  scheme);
* ``"orthogonal"``: τ_W · mean((R Rᵀ − I)²) of the recurrent matrix R — for the ``rnn`` and ``irnn``
  cells W_hh (its oRNN, with ``weight_init="orthogonal"``); for the PLRNN R = diag(A) + W (its oPLRNN,
  with ``init="orthogonal"``), plus τ_W · mean(h²). The official oPLRNN code adds the vector A to the
  matrix W by broadcasting (A_j added to column j), which is not diag(A) + W; here it is diag(A) + W.
  Its oRNN penalty reads a detached copy of W_hh and has no gradient there, so its oRNN is the
  orthogonal init alone; this penalty is what that code meant.

τ_A = τ_W = ``tau`` for every penalty. ``REGULARIZERS`` maps the names of ``train.reg`` to a description.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.cells.plrnn import REG_SCHEMES  # the official code's "R" (its configs'), "L", "F"
from longrnn.errors import UsageError, unknown

REGULARIZERS = {
    "none": "no penalty",
    "mar": "manifold-attractor regularisation of the rPLRNN (Schmidt et al. 2021), --tau, --reg-fraction, "
           "--reg-scheme, --tau-c",
    "l2": "the official benchmark's L2PLRNN: the regularised units' A, W, h pulled to 0; --tau, --reg-fraction, "
          "--reg-scheme, --tau-c",
    "l4": "the official benchmark's L2PLRNN2: fourth powers of A, W, h of the regularised units; --tau, "
          "--reg-fraction",
    "orthogonal": "mean((R R^T - I)^2) of the recurrent matrix (rnn, irnn: oRNN; plrnn: oPLRNN, plus h^2); --tau",
}
PLRNN_ONLY = ("mar", "l2", "l4")  # penalties on the regularised units of a PLRNN
SCHEMED = ("mar", "l2")  # penalties that take --reg-scheme and --tau-c


def manifold_attractor_penalty(module, tau_a: float, tau_w: float, fraction: float = 0.5, scheme: str = "rows",
                               tau_c: float = 0.0) -> torch.Tensor:
    """The rPLRNN penalty (formula in the module docstring) of a PLRNN cell (parameters ``A``, ``W``,
    ``h``), or summed over every such cell inside ``module`` (a `longrnn.nn.PLRNN` layer, a user's model
    holding PLRNN layers). Add it to the training loss.

    Returns a scalar tensor (0 when no unit is regularised) that carries the gradient.

    ``scheme`` (rows | columns | full) and ``tau_c``: the official code's options (module docstring).

    Raises:
        ValueError (`longrnn.errors.UsageError`): ``fraction`` outside [0, 1], a negative τ, an unknown
            scheme, or no PLRNN cell in ``module``.
    """
    if _has_plrnn_parameters(module):
        return _cell_penalty(module, tau_a, tau_w, fraction, scheme, tau_c)
    cells = [sub for sub in module.modules() if _has_plrnn_parameters(sub)]
    if not cells:
        raise UsageError(f"{type(module).__name__} holds no PLRNN cell (parameters A, W, h) to regularise")
    return sum(_cell_penalty(cell, tau_a, tau_w, fraction, scheme, tau_c) for cell in cells)


def _cell_penalty(cell, tau_a: float, tau_w: float, fraction: float, scheme: str = "rows",
                  tau_c: float = 0.0, a_target: float = 1.0) -> torch.Tensor:
    if not 0.0 <= fraction <= 1.0:
        raise UsageError(f"reg_fraction must be in [0, 1], got {fraction!r}")
    if tau_a < 0 or tau_w < 0 or tau_c < 0:
        raise UsageError(f"tau must be >= 0, got tau_a={tau_a!r}, tau_w={tau_w!r}, tau_c={tau_c!r}")
    if scheme not in REG_SCHEMES:
        raise unknown("reg_scheme", scheme, REG_SCHEMES)
    p = int(cell.hidden_size * fraction)
    if p == 0:
        return cell.A.new_zeros(())
    a, h = cell.A[:p], cell.h[:p]
    w = {"rows": cell.W[:p], "columns": cell.W[:, :p], "full": cell.W}[scheme]
    penalty = (
        tau_a * F.mse_loss(a, torch.full_like(a, a_target))
        + tau_w * F.mse_loss(w, torch.zeros_like(w))
        + tau_w * F.mse_loss(h, torch.zeros_like(h))
    )
    if tau_c:
        penalty = penalty + tau_c * F.mse_loss(cell.C[:p], torch.zeros_like(cell.C[:p]))
    return penalty


def fourth_power_penalty(cell, tau: float, fraction: float) -> torch.Tensor:
    """The L2PLRNN2 penalty of the official benchmark (module docstring, ``"l4"``) of one PLRNN cell."""
    p = int(cell.hidden_size * fraction)
    if p == 0:
        return cell.A.new_zeros(())
    parts = cell.A[:p], cell.W[:p, :p], cell.h[:p]
    return sum(tau * part.pow(4).mean() for part in parts)


def _halves(cell) -> list:
    """The cells a penalty acts on: the two of a double layer (`longrnn.cells.double.DoubleCell`), or the cell."""
    return [cell.first, cell.second] if hasattr(cell, "first") and hasattr(cell, "second") else [cell]


def _has_one_recurrent_matrix(cell) -> bool:
    weight = getattr(cell, "weight_hh", None)
    return _has_plrnn_parameters(cell) or (isinstance(weight, torch.Tensor) and weight.shape[0] == cell.hidden_size)


def recurrent_matrix(cell) -> torch.Tensor:
    """The matrix that carries the state from step to step: diag(A) + W (off-diagonal) for the PLRNN,
    W_hh for the Elman cells; a UsageError for other cells."""
    if _has_plrnn_parameters(cell):
        return torch.diag(cell.A) + cell.coupling()
    if _has_one_recurrent_matrix(cell):
        return cell.weight_hh
    raise UsageError(f"--reg orthogonal needs a cell with one recurrent matrix (rnn, irnn, plrnn), got "
                     f"{type(cell).__name__}")


def orthogonality_penalty(cell, tau: float) -> torch.Tensor:
    """τ · mean((R Rᵀ − I)²) of the recurrent matrix R (`recurrent_matrix`), plus τ · mean(h²) for the
    PLRNN (the official benchmark's oRNN and oPLRNN penalties)."""
    r = recurrent_matrix(cell)
    penalty = tau * F.mse_loss(r @ r.T, torch.eye(r.shape[0], dtype=r.dtype, device=r.device))
    if _has_plrnn_parameters(cell):
        penalty = penalty + tau * cell.h.pow(2).mean()
    return penalty


def _has_plrnn_parameters(cell) -> bool:
    return all(isinstance(getattr(cell, name, None), torch.Tensor) for name in ("A", "W", "h"))


def model_penalty(model, reg: str, tau: float, fraction: float, scheme: str = "rows",
                  tau_c: float = 0.0) -> torch.Tensor | None:
    """The penalty ``reg`` (module docstring) summed over the layers of a `SequenceModel`; None for ``"none"``.

    Every penalty uses τ_A = τ_W = ``tau`` (the paper's setting); ``mar`` and ``l2`` take W entries by
    ``scheme`` and τ_C = ``tau_c``; ``mar``, ``l2`` and ``l4`` need a cell with A, W and h (``plrnn``),
    ``orthogonal`` one with a single recurrent matrix (``rnn``, ``irnn``, ``plrnn``).
    """
    if reg not in REGULARIZERS:
        raise unknown("reg", reg, REGULARIZERS)
    if reg == "none":
        return None
    cells = [half for cell in model.cells for half in _halves(cell)]  # a double layer's two cells
    if reg == "orthogonal":
        if not all(_has_one_recurrent_matrix(c) for c in cells):
            raise UsageError(f"--reg orthogonal needs a cell with one recurrent matrix (rnn, irnn, plrnn), got "
                             f"{model.cell_name!r}")
        return sum(orthogonality_penalty(c, tau) for c in cells)
    if not all(_has_plrnn_parameters(c) for c in cells):
        raise UsageError(f"--reg {reg} needs a cell with parameters A, W, h (plrnn), got {model.cell_name!r}")
    if reg == "l4":
        return sum(fourth_power_penalty(c, tau, fraction) for c in cells)
    a_target = 1.0 if reg == "mar" else 0.0
    return sum(_cell_penalty(c, tau, tau, fraction, scheme, tau_c, a_target) for c in cells)
