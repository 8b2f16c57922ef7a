"""Dynamical-systems reconstruction (DSR): systems, trajectories, and (later) training and metrics.

    from longrnn.dsr import make_data, simulate, SYSTEMS
    data = make_data("bursting")         # the rPLRNN paper's bursting neuron, 1501 samples, its noise

See `longrnn.dsr.systems` (Lorenz-63, the bursting neuron of Durstewitz 2009, Hindmarsh-Rose),
`longrnn.dsr.integrate` (fixed-step RK4) and `longrnn.dsr.data` (noise, standardisation, split).
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
