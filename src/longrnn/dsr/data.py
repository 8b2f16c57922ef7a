"""Trajectories of a dynamical system for reconstruction: simulated, noisy, standardised, split.

    data = make_data("lorenz63", n_train=1, n_test=1, length=10_000, noise=0.05, seed=0)
    data.train, data.test          # float32 tensors (n, length, d), standardised

Pipeline (the rPLRNN paper's for the bursting neuron, research/rplrnn.md §4.1, and the later DSR
benchmarks' for Lorenz-63, §5.1):

1. ``n_train + n_test`` initial states are drawn from the seeded generator; each is integrated with
   fixed-step RK4 at the system's sampling interval, and its first ``transient`` samples are dropped.
   Training and test trajectories therefore start from different points of the attractor.
2. ``source_noise``: the system's own observation noise, if its source specifies one (the bursting
   neuron's Γ = diag(0.17, 1e-3, 3e-5) in mV / gate units), is added to every trajectory.
3. Every variable is standardised with the mean and standard deviation (ddof = 1, MATLAB's ``zscore``)
   of the training trajectories; the test trajectories use the same transform.
4. ``noise``: Gaussian observation noise with standard deviation ``noise`` (in units of the standardised
   data, so 0.05 is "5 % noise") is added to the training trajectories only; the test stays clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from longrnn.dsr.integrate import integrate
from longrnn.dsr.systems import SYSTEMS, System
from longrnn.errors import UsageError, check_positive, unknown

DEFAULT_LENGTH = {"lorenz63": 10_000, "bursting": 1501, "hindmarsh_rose": 10_000}


def get_system(name: str) -> System:
    """The system called ``name`` (`SYSTEMS`); UsageError naming the allowed ones for any other."""
    if name not in SYSTEMS:
        raise unknown("system", name, SYSTEMS)
    return SYSTEMS[name]


def simulate(name: str, n: int, length: int, seed: int = 0) -> np.ndarray:
    """``n`` noise-free trajectories (n, length, d) in the system's raw units, transients dropped."""
    system = get_system(name)
    check_positive("n", n)
    check_positive("length", length)
    rng = np.random.default_rng(seed)
    x0 = system.initial_states(rng, n)
    samples = integrate(system.vector_field, x0, system.dt, system.transient + length, system.substeps)
    return np.ascontiguousarray(samples[system.transient :].transpose(1, 0, 2))


@dataclass
class Standardizer:
    """x -> (x − mean) / std per variable; ``fit`` uses ddof = 1 over every sample of every trajectory."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        flat = x.reshape(-1, x.shape[-1])
        return cls(flat.mean(0), flat.std(0, ddof=1))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return x * self.std + self.mean


@dataclass
class DSRData:
    """A system's training and test trajectories, standardised with the training part's statistics."""

    system: str
    variables: tuple[str, ...]
    dt: float
    train: torch.Tensor  # (n_train, length, d), standardised (+ training noise)
    test: torch.Tensor  # (n_test, test_length, d), standardised, clean of the training noise
    standardizer: Standardizer


def make_data(
    system: str = "lorenz63",
    n_train: int = 1,
    n_test: int = 1,
    length: int | None = None,
    test_length: int | None = None,
    noise: float = 0.0,
    source_noise: bool = True,
    seed: int = 0,
) -> DSRData:
    """Simulate, add noise, standardise and split, as the module docstring says."""
    spec = get_system(system)
    length = DEFAULT_LENGTH[system] if length is None else length
    test_length = length if test_length is None else test_length
    check_positive("n_train", n_train)
    check_positive("n_test", n_test)
    check_noise(noise)
    raw = simulate(system, n_train + n_test, max(length, test_length), seed)
    noise_variance = spec.raw_noise_variance if source_noise else None
    return prepare_data(raw, system, spec.variables, spec.dt, n_train, length, test_length, noise, seed,
                        noise_variance)


def check_noise(noise) -> None:
    """A UsageError unless ``noise`` is a number >= 0 (a standard deviation in standardised units)."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise UsageError(f"noise must be >= 0 (a standard deviation in standardised units), got {noise!r}")


def prepare_data(
    raw: np.ndarray,
    system: str,
    variables: tuple[str, ...],
    dt: float,
    n_train: int,
    length: int,
    test_length: int,
    noise: float,
    seed: int,
    raw_noise_variance: tuple[float, ...] | None = None,
) -> DSRData:
    """Steps 2-4 of the module docstring on simulated trajectories ``raw`` (n_train + n_test, T, d), raw
    units: the source's noise, the training part's standardisation, the training noise."""
    rng = np.random.default_rng([seed, 1])  # noise draws independent of the initial states
    if raw_noise_variance is not None:
        raw = raw + rng.normal(size=raw.shape) * np.sqrt(raw_noise_variance)
    train, test = raw[:n_train, :length], raw[n_train:, :test_length]
    standardizer = Standardizer.fit(train)
    train, test = standardizer.transform(train), standardizer.transform(test)
    if noise > 0:
        train = train + noise * rng.normal(size=train.shape)

    def as_tensor(a):
        return torch.as_tensor(a, dtype=torch.float32)

    return DSRData(system, variables, dt, as_tensor(train), as_tensor(test), standardizer)
