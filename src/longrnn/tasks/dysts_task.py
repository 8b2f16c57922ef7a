"""Reconstruction of a system from the dysts catalogue (``longrnn train --task dysts --system NAME``).

The system is simulated by `longrnn.dsr.dysts_systems` (dysts's published parameters, RK45,
``points_per_period`` samples per dominant period, three trajectories from seeded starting points on the
attractor: training, validation, test), then it is a dynamical-systems task as `longrnn.tasks.dynamical`
describes — standardised on the training trajectory, windows of ``seq_len + 1`` samples, the next sample
as target, the persistence baseline, ``longrnn dsr eval`` against the test trajectory. ``noise`` adds
observation noise (standardised units) to the training trajectory only.

The run directory's ``data.json`` records the system, its parameters, dysts's version, its reference
Lyapunov exponents and the SHA-256 of the trajectories, so a run scored again on data that a new dysts
made differently is refused. Needs the extra ``[dysts]``.
"""

from __future__ import annotations

from longrnn.dsr.data import DSRData, check_noise, prepare_data
from longrnn.dsr.dysts_systems import array_sha256, describe_system, dysts_flow, sampling_interval, simulate_dysts
from longrnn.errors import UsageError, check_positive
from longrnn.tasks.dynamical import DynamicalSystemTask
from longrnn.tasks.registry import register


@register("dysts", "next-step prediction of a chaotic system of the dysts catalogue (--system NAME) for "
                   "reconstruction")
class Dysts(DynamicalSystemTask):
    def __init__(
        self,
        system: str | None = None,
        seq_len: int = 200,
        length: int = 10_000,
        points_per_period: int = 100,
        transient: int = 1000,
        noise: float = 0.0,
        data_seed: int = 0,
        validation_size: int = 64,
        test_size: int = 64,
    ):
        if system is None:
            raise UsageError("task 'dysts' needs its system: --system NAME (e.g. Rossler, HyperRossler; "
                             "`longrnn list systems` names them)")
        dysts_flow(system)  # the name, before anything is simulated
        self.system = system
        self.points_per_period = check_positive("points_per_period", points_per_period)
        self.transient = check_positive("transient", transient)
        super().__init__(seq_len=seq_len, length=length, noise=noise, n_train=1, data_seed=data_seed,
                         validation_size=validation_size, test_size=test_size)

    def make_data(self, n_train: int, length: int | None, noise: float, data_seed: int) -> DSRData:
        check_positive("length", length)
        check_noise(noise)  # before the simulation, which takes seconds
        raw = simulate_dysts(self.system, n_train + 2, length, data_seed, self.points_per_period, self.transient)
        self.fingerprint = array_sha256(raw)
        variables = tuple(f"x{i}" for i in range(raw.shape[-1]))
        dt = sampling_interval(self.system, self.points_per_period)
        return prepare_data(raw, self.system, variables, dt, n_train, length, length, noise, data_seed)

    def describe(self) -> dict:
        """What a run directory records of its data (``data.json``), as tasks sequences and timeseries do."""
        length = int(self.data.train.shape[1])
        return {"data": f"dysts:{self.system}", "sha256": self.fingerprint, **describe_system(self.system),
                "dt": self.data.dt, "points_per_period": self.points_per_period, "transient": self.transient,
                "split": {"train": length, "validation": length, "test": length}}

    def __repr__(self) -> str:
        return f"Dysts(system={self.system!r}, seq_len={self.seq_len}, length={self.data.train.shape[1]})"
