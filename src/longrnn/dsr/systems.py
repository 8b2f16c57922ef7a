"""Dynamical systems to reconstruct, each with the parameters of its source and a sampling interval.

* ``lorenz63`` — Lorenz (1963), "Deterministic nonperiodic flow":

      dx/dt = σ (y − x),  dy/dt = x (ρ − z) − y,  dz/dt = x y − β z,   σ = 10, ρ = 28, β = 8/3

  sampled at dt = 0.01 (the DSR benchmarks' step, research/rplrnn.md §5.1); one time unit is 100 samples.

* ``bursting`` — the 3-D bursting neuron of Durstewitz (2009) as used by Schmidt et al. (ICLR 2021,
  Fig. 3; parameters verified against their data, research/rplrnn.md §4.1), in ms, mV, mS, µF:

      C dV/dt = I − g_L(V−E_L) − g_Na m∞(V)(V−E_Na) − g_K n (V−E_K) − g_M h (V−E_K) − g_NMDA σ(V)(V−E_NMDA)
      dn/dt = (n∞(V) − n)/τ_n,   dh/dt = (h∞(V) − h)/τ_h
      x∞(V) = 1/(1 + exp((V_x − V)/k_x)),   σ(V) = 1/(1 + 0.33 exp(−0.0625 V))

  Fast spikes (τ_n = 1 ms) ride on slow bursts set by the M-current gate h (τ_h = 200 ms). Sampled at
  dt = 0.5 ms as in the paper, integrated with 5 RK4 substeps of 0.1 ms (one RK4 step of 0.5 ms is
  stable but misplaces spikes; 0.1 ms stays within 0.1 mV of a 40-substep reference). The paper's
  observation noise has variances Γ = diag(0.17, 1e-3, 3e-5) in these raw units (``raw_noise_variance``),
  added before standardising.

* ``hindmarsh_rose`` — the Hindmarsh & Rose (1984) neuron, a second fast-slow burster:

      dx/dt = y − a x³ + b x² − z + I,   dy/dt = c − d x² − y,   dz/dt = r (s (x − x_R) − z)
      a = 1, b = 3, c = 1, d = 5, s = 4, x_R = −1.6, I = 3.25, r = 0.006

  (the irregular-bursting regime); z evolves about 1/r ≈ 170 times slower than x. Sampled at dt = 0.1.

``transient`` samples are simulated and dropped before a trajectory starts, so it lies on the attractor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class System:
    """A vector field with its variables, sampling interval, integration substeps and the source's noise."""

    name: str
    variables: tuple[str, ...]
    vector_field: Callable[[np.ndarray], np.ndarray]
    initial_states: Callable[[np.random.Generator, int], np.ndarray]  # (n, d) starting points
    dt: float  # sampling interval
    substeps: int  # RK4 steps per sampling interval
    transient: int  # samples dropped at the start
    raw_noise_variance: tuple[float, ...] | None = None  # the source's observation noise, raw units

    @property
    def dim(self) -> int:
        return len(self.variables)


# --- Lorenz-63 -----------------------------------------------------------------------------------------
SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0


def lorenz63_field(x: np.ndarray) -> np.ndarray:
    """Lorenz-63's dx/dt at x (..., 3) (equations in this module's docstring)."""
    u, v, w = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([SIGMA * (v - u), u * (RHO - w) - v, u * v - BETA * w], axis=-1)


def _lorenz63_start(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.0, 5.0, (n, 3)) + np.array([0.0, 0.0, 25.0])


# --- bursting neuron (Durstewitz 2009) --------------------------------------------------------------------
BURSTING = {
    "I": 0.0, "C": 6.0, "gL": 8.0, "EL": -80.0, "gNa": 20.0, "ENa": 60.0, "VNa": -20.0, "kNa": 15.0,
    "gK": 10.0, "EK": -90.0, "VK": -25.0, "kK": 5.0, "tau_n": 1.0, "gM": 25.0, "VM": -15.0, "kM": 5.0,
    "tau_h": 200.0, "gNMDA": 10.2, "ENMDA": 0.0,
}


def _steady_state(v: np.ndarray, half: float, slope: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp((half - v) / slope))


def bursting_field(x: np.ndarray, p: dict = BURSTING) -> np.ndarray:
    v, n, h = x[..., 0], x[..., 1], x[..., 2]
    current = (
        p["I"]
        - p["gL"] * (v - p["EL"])
        - p["gNa"] * _steady_state(v, p["VNa"], p["kNa"]) * (v - p["ENa"])
        - p["gK"] * n * (v - p["EK"])
        - p["gM"] * h * (v - p["EK"])
        - p["gNMDA"] / (1.0 + 0.33 * np.exp(-0.0625 * v)) * (v - p["ENMDA"])
    )
    dn = (_steady_state(v, p["VK"], p["kK"]) - n) / p["tau_n"]
    dh = (_steady_state(v, p["VM"], p["kM"]) - h) / p["tau_h"]
    return np.stack([current / p["C"], dn, dh], axis=-1)


def _bursting_start(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.stack([rng.uniform(-60, -30, n), rng.uniform(0.0, 0.1, n), rng.uniform(0.0, 0.05, n)], axis=-1)


# --- Hindmarsh-Rose ---------------------------------------------------------------------------------------
HINDMARSH_ROSE = {"a": 1.0, "b": 3.0, "c": 1.0, "d": 5.0, "s": 4.0, "x_rest": -1.6, "I": 3.25, "r": 0.006}


def hindmarsh_rose_field(x: np.ndarray, p: dict = HINDMARSH_ROSE) -> np.ndarray:
    u, v, w = x[..., 0], x[..., 1], x[..., 2]
    du = v - p["a"] * u**3 + p["b"] * u**2 - w + p["I"]
    dv = p["c"] - p["d"] * u**2 - v
    dw = p["r"] * (p["s"] * (u - p["x_rest"]) - w)
    return np.stack([du, dv, dw], axis=-1)


def _hindmarsh_rose_start(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.0, 1.0, (n, 3)) + np.array([-1.0, -5.0, 3.0])


SYSTEMS = {
    "lorenz63": System("lorenz63", ("x", "y", "z"), lorenz63_field, _lorenz63_start,
                       dt=0.01, substeps=1, transient=1000),
    "bursting": System("bursting", ("V", "n", "h"), bursting_field, _bursting_start,
                       dt=0.5, substeps=5, transient=500, raw_noise_variance=(0.17, 1e-3, 3e-5)),
    "hindmarsh_rose": System("hindmarsh_rose", ("x", "y", "z"), hindmarsh_rose_field, _hindmarsh_rose_start,
                             dt=0.1, substeps=2, transient=2000),
}
