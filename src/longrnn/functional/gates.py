"""Gate functions for the forget gate of an LSTM and the update gate of a GRU (pure math, no state).

A gate maps a pre-activation z to (0, 1). How fast it saturates decides how cheaply it can learn a
gate value near 1, i.e. a long time scale T = 1/(1 - f) (Tallec & Ollivier 2018):

    sigmoid_gate(z)  = σ(z)                       1 - σ(z) ≈ e^-z              (exponential)
    softsign_gate(z) = (1 + z/(1+|z|)) / 2        1 - φ(z) = 1/(2(1+z)), z>0   (polynomial: slower)
    fast_gate(z)     = σ(sinh z)                  1 - φ(z) ≈ exp(-e^z / 2)     (doubly exponential)

The fast gate is from Ohno, Kanai & Ida, "Fast Saturating Gate for Learning Long Time Scales with
Recurrent Neural Networks", AAAI 2023 (arXiv 2210.01348); the normalized softsign is the slow
baseline of its Figure 1. All three satisfy φ(-z) = 1 - φ(z) and φ(0) = 1/2, φ'(0) = 1/4 for
sigmoid and fast gate.

The refine gate (Gu, Gulcehre, Paine, Hoffman & Pascanu, "Improving the Gating Mechanism of
Recurrent Neural Networks", ICML 2020) combines a forget gate f with a second gate r:

    g = r · (1 - (1 - f)²) + (1 - r) · f²

so g ranges over [f², 2f - f²]: r pushes the effective gate towards the ends without saturating f.

`GATES` maps names to the single-input gates; `gate_bias` maps a sigmoid-space bias to the bias that
gives another gate the same initial value, so comparisons start from the same gate values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# sinh overflows float32 above |z| ≈ 89.4 and autograd then multiplies 0 by inf. At |z| = 20,
# σ(sinh z) is already exactly 1 (or 0) in float32 and float64, and so is its gradient 0: clamping there
# changes no output value and no gradient, it only removes the inf.
FAST_GATE_CLAMP = 20.0


def sigmoid_gate(z: torch.Tensor) -> torch.Tensor:
    """σ(z): the standard gate; saturates exponentially."""
    return torch.sigmoid(z)


def softsign_gate(z: torch.Tensor) -> torch.Tensor:
    """(1 + z/(1+|z|))/2: the normalized softsign; saturates polynomially (slowly)."""
    return 0.5 * (1.0 + z / (1.0 + z.abs()))


def fast_gate(z: torch.Tensor) -> torch.Tensor:
    """σ(sinh z): the fast gate of Ohno et al. 2023; saturates doubly exponentially."""
    # hardtanh is the clamp with a cheaper backward on the CPU (one kernel instead of masks and where)
    return torch.sigmoid(torch.sinh(F.hardtanh(z, -FAST_GATE_CLAMP, FAST_GATE_CLAMP)))


def refine_gate(f: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """r·(1-(1-f)²) + (1-r)·f²: the refine gate of Gu et al. 2020 (UR-LSTM), from gate values f and r."""
    return r * (1.0 - (1.0 - f) ** 2) + (1.0 - r) * f**2


GATES = {
    "sigmoid": sigmoid_gate,
    "fast": fast_gate,
    "softsign": softsign_gate,
}


def logit(p: float) -> float:
    """σ⁻¹(p), the sigmoid-space bias of a gate value p."""
    return math.log(p / (1.0 - p))


# b -> b' with GATES[name](b') == σ(b), in closed form (no round trip through σ(b), which is 1.0 for large b):
#   fast:     σ(sinh b') = σ(b)                     =>  b' = asinh(b)
#   softsign: (1 + b'/(1+|b'|))/2 = σ(b)            =>  b' = sign(b) · (e^|b| - 1) / 2
SIGMOID_PARITY = {
    "sigmoid": lambda b: b,
    "fast": torch.asinh,
    "softsign": lambda b: torch.sign(b) * torch.expm1(b.abs()) / 2.0,
}


def gate_bias(gate: str, sigmoid_bias: torch.Tensor) -> torch.Tensor:
    """The bias b' with ``GATES[gate](b') == σ(sigmoid_bias)``: the same initial gate values for every gate.

    For the fast gate this is asinh(b), the mapping the S4 code's ``dt_fast`` option also uses.
    """
    return SIGMOID_PARITY[gate](sigmoid_bias)


def gate_with_derivative(gate: str, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ(z), φ'(z)) for a gate of `GATES`, without autograd (for hand-written backward passes).

        sigmoid:  φ' = φ(1 - φ)
        fast:     φ' = φ(1 - φ) · cosh(z)   for |z| < 20, else 0 (the clamp; φ is exactly 0 or 1 there)
        softsign: φ' = 1 / (2 (1 + |z|)²)
    """
    if gate == "sigmoid":
        f = torch.sigmoid(z)
        return f, f * (1.0 - f)
    if gate == "fast":
        zc = F.hardtanh(z, -FAST_GATE_CLAMP, FAST_GATE_CLAMP)
        f = torch.sigmoid(torch.sinh(zc))
        return f, f * (1.0 - f) * torch.cosh(zc)
    if gate == "softsign":
        d = 1.0 / (1.0 + z.abs())
        return 0.5 * (1.0 + z * d), 0.5 * d * d
    raise ValueError(f"no closed-form derivative for gate {gate!r}; allowed: sigmoid, fast, softsign")
