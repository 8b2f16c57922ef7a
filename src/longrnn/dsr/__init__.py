"""Dynamical-systems reconstruction (DSR): systems, trajectories, rollouts and metrics.

    from longrnn.dsr import make_data, simulate, SYSTEMS
    data = make_data("bursting")         # the rPLRNN paper's bursting neuron, 1501 samples, its noise

See `longrnn.dsr.systems` (Lorenz-63, the bursting neuron of Durstewitz 2009, Hindmarsh-Rose),
`longrnn.dsr.integrate` (fixed-step RK4), `longrnn.dsr.data` (noise, standardisation, split),
`longrnn.dsr.rollout` (forced and free runs of a model) and `longrnn.dsr.metrics` (D_stsp, D_H).
"""

from longrnn.dsr.data import DEFAULT_LENGTH, DSRData, Standardizer, make_data, simulate
from longrnn.dsr.integrate import integrate, rk4_step
from longrnn.dsr.systems import SYSTEMS, System

__all__ = [
    "DEFAULT_LENGTH",
    "SYSTEMS",
    "DSRData",
    "Standardizer",
    "System",
    "integrate",
    "make_data",
    "rk4_step",
    "simulate",
]
