"""Fixed-step fourth-order Runge-Kutta integration (classical RK4), in numpy float64.

For dx/dt = f(x) and a step dt:

    k1 = f(x),  k2 = f(x + dt/2 k1),  k3 = f(x + dt/2 k2),  k4 = f(x + dt k3)
    x_next = x + dt/6 (k1 + 2 k2 + 2 k3 + k4)

(Kutta 1901; e.g. Hairer, Nørsett & Wanner, "Solving Ordinary Differential Equations I", §II.1). The
global error is O(dt^4). ``f`` works on a batch of states (..., d), so many trajectories are integrated
at once. ``substeps`` integration steps are taken between two stored samples, so a stiff system can be
integrated finely and stored at a coarser sampling interval.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

VectorField = Callable[[np.ndarray], np.ndarray]


def rk4_step(f: VectorField, x: np.ndarray, dt: float) -> np.ndarray:
    """One classical fourth-order Runge-Kutta step of dx/dt = f(x) over ``dt``; x (..., d)."""
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(f: VectorField, x0: np.ndarray, dt: float, n_samples: int, substeps: int = 1) -> np.ndarray:
    """Samples x(0), x(dt), ..., x((n_samples - 1) dt): an array (n_samples, *x0.shape).

    Each sampling interval ``dt`` is crossed in ``substeps`` RK4 steps of ``dt / substeps``.
    """
    x = np.asarray(x0, dtype=np.float64)
    h = dt / substeps
    out = np.empty((n_samples, *x.shape))
    out[0] = x
    for i in range(1, n_samples):
        for _ in range(substeps):
            x = rk4_step(f, x, h)
        out[i] = x
    return out
