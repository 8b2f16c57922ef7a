"""Piecewise-linear RNN (``plrnn``): the latent model of Koppe et al. 2019 and Schmidt et al. 2021.

    z_t = A z_{t-1} + W relu(z_{t-1}) + h + C s_t

(Schmidt, Koppe, Monfared, Beutelspacher & Durstewitz, "Identifying nonlinear dynamical systems with
multiple time scales and long-range dependencies", ICLR 2021, eq. 1 without process noise; the ML
benchmarks of its code ``DurstewitzLab/reg-PLRNN`` run it deterministically, as here.)

Parameters, named as in the paper:

* ``A`` (M,): the diagonal of the linear (auto-regressive) part.
* ``W`` (M, M): the coupling through the ReLU. Only its off-diagonal part acts (the diagonal is
  masked in the step, as the original ``OffDiagLinear`` does); the stored diagonal starts at 0 and gets
  no gradient from the step, so ``W`` can be read and penalised as a plain matrix.
* ``h`` (M,): the bias. ``C`` (M, K): the input weights, no bias.
* ``z0`` (M,), with ``initial_state="learned"``: the learned initial state shared by the batch (the
  code's ``mu0``). With ``initial_state="zero"`` (the default, the registry-wide contract) z_0 = 0.

Output (what the model's linear readout head sees): ``output="z"`` gives y = B z, as in the paper's
long-dependency benchmarks; ``output="relu"`` gives x = B relu(z), its observation model for
dynamical-systems reconstruction.

Initialisations (``init``):

* ``"plain"``: every parameter uniform(-1/sqrt(M), 1/sqrt(M)) like `torch.nn.RNNCell` (W's diagonal 0).
* ``"paper"``: the code's ``generate_random_params``: AW ~ N(0, 1/M) elementwise, shrunk by 1/(1 + sqrt(M))
  while its spectral radius exceeds 1, A = diag(AW), W = AW - diag(AW); h ~ N(0, 1/M);
  C ~ N(0, 1/M) * sqrt(2) exp(1.2 / max(M, 6) - 2.4); z0 ~ U[0, 1).
* ``"identity"`` (iPLRNN): the paper's init, then the first P = ``int(M * integrators)`` units are set
  to perfect integrators, A_ii = 1, W = 0 on the regularised units' entries, h_i = 0 (the code's
  ``initialize_regulated = "AWh"``; C is left as drawn). ``integrators=1.0`` (the default) is the
  paper's iPLRNN; ``integrators=0.5`` with the manifold-attractor penalty
  (`longrnn.methods.regularizers`) on the same units is its rPLRNN.
* ``"l2"`` (the benchmark code's L2PLRNN): as ``"identity"`` but A_ii = 0 on the P units (with
  ``--reg l2`` their A, W, h are pulled to 0).
* ``"orthogonal"`` (its oPLRNN): the paper's draws, then diag(A) + W replaced by a random orthogonal
  matrix (`torch.nn.init.orthogonal_`) and h = 0 (with ``--reg orthogonal`` it is kept near-orthogonal).

``integrators`` (P as a fraction of M) applies to ``"identity"`` and ``"l2"``; ``reg_scheme`` picks the W
entries of the P units that those inits zero, as the official code zeroes its regularisation mask:
``"rows"`` W[:P, :] (the default, the paper's), ``"columns"`` W[:, :P] or ``"full"`` all of W. The trainer
passes its ``--reg-scheme`` here, so the init and the penalty use the same entries.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from longrnn.cells.base import Cell, autocast_enabled, zero_state
from longrnn.cells.init import np_input_scale
from longrnn.cells.kernel_sequences import kernel_engine, plrnn_sequence
from longrnn.cells.registry import register
from longrnn.errors import UsageError, unknown

INITS = ("plain", "paper", "identity", "l2", "orthogonal")
REGULATED_INITS = ("identity", "l2")  # inits that set the first P units: integrators, or zeros
REG_SCHEMES = ("rows", "columns", "full")  # W entries of the regulated units: the code's "R", "L", "F"
OUTPUTS = ("z", "relu")
ENGINES = ("auto", "triton")  # auto: the step loop; triton: one Triton launch forward and one backward
INITIAL_STATES = ("zero", "learned")


def integrator_count(hidden_size: int, fraction: float) -> int:
    """The number of leading units that are integrators / regularised: ``int(M * fraction)`` (the code's)."""
    if not 0.0 <= fraction <= 1.0:
        raise UsageError(f"the fraction of integrator / regularised units must be in [0, 1], got {fraction!r}")
    return int(hidden_size * fraction)


def regulated_entries(hidden_size: int, units: int, scheme: str) -> torch.Tensor:
    """(M, M) bool: the W entries of the first ``units`` units under ``scheme`` (`REG_SCHEMES`), the
    official code's ``W_regularization_mask``."""
    mask = torch.zeros(hidden_size, hidden_size, dtype=torch.bool)
    if scheme == "rows":
        mask[:units] = True
    elif scheme == "columns":
        mask[:, :units] = True
    else:
        mask[:] = True
    return mask


def paper_recurrent_matrix(hidden_size: int) -> torch.Tensor:
    """AW ~ N(0, 1/M), multiplied by 1/(1 + sqrt(M)) until its spectral radius is at most 1."""
    aw = torch.randn(hidden_size, hidden_size) / math.sqrt(hidden_size)
    while torch.linalg.eigvals(aw).abs().max() > 1.0:
        aw = aw / (1.0 + math.sqrt(hidden_size))
    return aw


@register("plrnn", "piecewise-linear RNN z = A z + W relu(z) + h + C s (Koppe 2019; rPLRNN, Schmidt 2021)")
class PLRNNCell(Cell):
    """One step of the PLRNN; see the module docstring for the equation, parameters and options.

    State: z, a (batch, M) tensor. Output: z (``output="z"``) or relu(z) (``output="relu"``).
    ``engine``: auto (the Triton kernels on a CUDA device where the ``gpu`` extra is installed, with
    gradients that can be differentiated again; the step loop elsewhere) or triton (one Triton launch
    forward and one backward, `longrnn.cells.kernel_sequences`; float32/float64 on a CUDA device, the
    ``gpu`` extra).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        init: str = "paper",
        integrators: float | None = None,
        output: str = "z",
        initial_state: str = "zero",
        reg_scheme: str = "rows",
        engine: str = "auto",
    ):
        super().__init__()
        for kind, value, allowed in (
            ("init", init, INITS),
            ("output", output, OUTPUTS),
            ("initial_state", initial_state, INITIAL_STATES),
            ("reg_scheme", reg_scheme, REG_SCHEMES),
            ("engine", engine, ENGINES),
        ):
            if value not in allowed:
                raise unknown(f"plrnn {kind}", value, allowed)
        self.engine = engine
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.init = init
        regulated = init in REGULATED_INITS
        for key, value, default in (("integrators", integrators, None), ("reg_scheme", reg_scheme, "rows")):
            if value != default and not regulated:  # a setting that would be ignored unseen
                raise UsageError(f"{key} ({value!r}) applies to init 'identity' or 'l2'; this cell's init is {init!r}")
        self.n_integrators = integrator_count(hidden_size, 1.0 if integrators is None else integrators) \
            if regulated else 0
        self.reg_scheme = reg_scheme
        self.output = output
        self.initial_state = initial_state
        self.A = nn.Parameter(torch.empty(hidden_size))
        self.W = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.h = nn.Parameter(torch.empty(hidden_size))
        self.C = nn.Parameter(torch.empty(hidden_size, input_size))
        if initial_state == "learned":
            self.z0 = nn.Parameter(torch.empty(hidden_size))
        else:
            self.register_parameter("z0", None)
        self.register_buffer("off_diagonal", 1.0 - torch.eye(hidden_size), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        m = self.hidden_size
        if self.init == "plain":
            bound = 1.0 / math.sqrt(m)
            for p in self.parameters():
                nn.init.uniform_(p, -bound, bound)
            if self.z0 is not None:
                self.z0.zero_()
        else:
            aw = paper_recurrent_matrix(m)
            self.A.copy_(aw.diagonal())
            self.W.copy_(aw)
            nn.init.normal_(self.h, 0.0, 1.0 / math.sqrt(m))
            nn.init.normal_(self.C, 0.0, np_input_scale(m) / math.sqrt(m))
            if self.z0 is not None:
                nn.init.uniform_(self.z0, 0.0, 1.0)
            if self.init == "orthogonal":
                nn.init.orthogonal_(aw)
                self.A.copy_(aw.diagonal())
                self.W.copy_(aw)
                self.h.zero_()
        self.W.fill_diagonal_(0.0)
        p = self.n_integrators
        self.A[:p] = 1.0 if self.init == "identity" else 0.0
        self.W[regulated_entries(m, p, self.reg_scheme)] = 0.0
        self.h[:p] = 0.0

    def init_state(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        if self.z0 is None:
            return zero_state(batch_size, self.hidden_size, self.A, device, dtype)
        return self.z0.to(device=device, dtype=dtype).expand(batch_size, -1)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """C s_t, for any leading shape (..., K) -> (..., M)."""
        return x @ self.C.T

    def coupling(self) -> torch.Tensor:
        """The W that acts in the step: the stored W with its diagonal masked to 0."""
        return self.W * self.off_diagonal

    def step(self, x_proj: torch.Tensor, state: torch.Tensor):
        z = self.A * state + torch.relu(state) @ self.coupling().T + self.h + x_proj
        return (torch.relu(z) if self.output == "relu" else z), z

    def fused_forward(self, x: torch.Tensor, state: torch.Tensor):
        """With engine triton, or auto on a CUDA device (`kernel_engine`), outside autocast and torch.compile's
        tracing: the whole sequence as one Triton launch forward and one backward
        (`longrnn.cells.kernel_sequences`); otherwise None."""
        engine = kernel_engine(self.engine, x.device, cpp=False)
        if engine is None or autocast_enabled(x.device) or torch.compiler.is_compiling():
            return None
        z, z_n = plrnn_sequence(self.project_input(x.transpose(0, 1)), state, self.A, self.coupling(), self.h,
                                twice_differentiable=self.engine == "auto")
        return (torch.relu(z) if self.output == "relu" else z), z_n

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, init={self.init!r}, integrators={self.n_integrators}, "
            f"output={self.output!r}, initial_state={self.initial_state!r}"
            + (f", reg_scheme={self.reg_scheme!r}" if self.reg_scheme != "rows" else "")
        )
