"""How well a generated trajectory reproduces a true one, as the DSR literature measures it.

Conventions of the later Durstewitz-lab code (research/rplrnn.md §5.3); inputs are arrays or tensors of
shape (T, N) or (batch, T, N), in standardised units.

* `state_space_divergence` (D_stsp), the Kullback-Leibler divergence KL(p_true ‖ p_gen) between the
  occupation densities of the two trajectories in state space, blind to time order:
  - ``method="bins"`` (N ≤ 5): ``bins`` bins per dimension over [min − 0.1 sd, max + 0.1 sd] of the true
    data (points outside are dropped), Laplace smoothing p = (count + α) / (Σ count + α bins^N), α = 1e-5.
    NaN if no generated point falls inside the range.
  - ``method="gmm"`` (higher N): each density is a mixture of isotropic unit-variance Gaussians centred
    on the (first ``max_points``) points; KL is estimated by Monte-Carlo, E_{s ~ p_true} log p_true(s) /
    p_gen(s), with ``samples`` draws.
* `power_spectrum_distance` (D_H): per dimension, z-score, |rfft|², Gaussian smoothing (sd ``smoothing``
  bins, radius 4 sd, reflected edges), normalise to a distribution; the Hellinger distance
  (1/√2) ‖√p − √q‖₂, averaged over dimensions. Spectra of a batch are averaged before comparing. A
  constant series (e.g. a generated trajectory stuck at a fixed point) has all its power at frequency 0.
* n-step prediction error: `longrnn.dsr.rollout.prediction_error`.

A measure over data that are not all finite is undefined: both distances return NaN when either
trajectory holds a NaN or an infinity anywhere (a generation that diverges after 100 steps must not be
scored on its first 100, which would rank it above one stuck at a fixed point).
"""

from __future__ import annotations

import numpy as np
import torch

from longrnn.errors import UsageError

LAPLACE_ALPHA = 1e-5


def _points(x) -> np.ndarray:
    """(T, N) or (batch, T, N) -> (samples, N) float64."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim not in (2, 3):
        raise UsageError(f"expected a trajectory of shape (T, N) or (batch, T, N), got {a.shape}")
    return a.reshape(-1, a.shape[-1]).astype(np.float64)


def _series(x) -> np.ndarray:
    """(T, N) or (batch, T, N) -> (batch, T, N) float64."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim not in (2, 3):
        raise UsageError(f"expected a trajectory of shape (T, N) or (batch, T, N), got {a.shape}")
    return (a[None] if a.ndim == 2 else a).astype(np.float64)


def _histogram(points: np.ndarray, low: np.ndarray, high: np.ndarray, bins: int) -> np.ndarray:
    """Counts in a grid of bins^N cells over [low, high]; points outside are dropped."""
    inside = ((points >= low) & (points <= high)).all(axis=1)
    index = np.floor((points[inside] - low) / (high - low) * bins).astype(np.int64).clip(0, bins - 1)
    flat = np.ravel_multi_index(index.T, (bins,) * points.shape[1])
    return np.bincount(flat, minlength=bins ** points.shape[1]).astype(np.float64)


def _binned_kl(true: np.ndarray, gen: np.ndarray, bins: int) -> float:
    spread = 0.1 * true.std(0)
    low, high = true.min(0) - spread, true.max(0) + spread
    counts_true, counts_gen = _histogram(true, low, high, bins), _histogram(gen, low, high, bins)
    if counts_gen.sum() == 0:
        return float("nan")
    cells = counts_true.size
    p = (counts_true + LAPLACE_ALPHA) / (counts_true.sum() + LAPLACE_ALPHA * cells)
    q = (counts_gen + LAPLACE_ALPHA) / (counts_gen.sum() + LAPLACE_ALPHA * cells)
    return float((p * np.log(p / q)).sum())


def _mixture_log_density(samples: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """log of the mean of N(s; c, I) over the centres c, for every sample s."""
    n = samples.shape[1]
    sq = torch.cdist(samples, centres).pow(2)
    return torch.logsumexp(-0.5 * sq, dim=1) - np.log(centres.shape[0]) - 0.5 * n * np.log(2 * np.pi)


def _gmm_kl(true: np.ndarray, gen: np.ndarray, samples: int, max_points: int, seed: int) -> float:
    centres_true = torch.as_tensor(true[:max_points])
    centres_gen = torch.as_tensor(gen[:max_points])
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, centres_true.shape[0], (samples,), generator=g)
    draws = centres_true[pick] + torch.randn(samples, true.shape[1], generator=g, dtype=torch.float64)
    log_ratio = _mixture_log_density(draws, centres_true) - _mixture_log_density(draws, centres_gen)
    return float(log_ratio.mean())


def state_space_divergence(
    x_true, x_gen, bins: int = 30, method: str = "auto", samples: int = 1000, max_points: int = 10_000, seed: int = 0
) -> float:
    """D_stsp = KL(p_true ‖ p_gen) of the state-space densities; see the module docstring.

    ``method``: "bins", "gmm", or "auto" (bins up to 5 dimensions, as the lab's code, else gmm).
    """
    true, gen = _points(x_true), _points(x_gen)
    if true.shape[1] != gen.shape[1]:
        raise UsageError(f"the trajectories have {true.shape[1]} and {gen.shape[1]} dimensions")
    if method not in ("auto", "bins", "gmm"):
        raise UsageError(f"unknown method {method!r}; allowed: auto, bins, gmm")
    if not (np.isfinite(true).all() and np.isfinite(gen).all()):
        return float("nan")  # undefined over data that are not finite
    if method == "auto":
        method = "bins" if true.shape[1] <= 5 else "gmm"
    if method == "bins":
        return _binned_kl(true, gen, bins)
    if method == "gmm":
        return _gmm_kl(true, gen, samples, max_points, seed)
    raise UsageError(f"unknown method {method!r}; allowed: auto, bins, gmm")


def _gaussian_smooth(p: np.ndarray, sd: float) -> np.ndarray:
    """Convolve along the last axis with a normalised Gaussian (radius 4 sd), edges reflected."""
    if sd <= 0:
        return p
    radius = int(4 * sd + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sd) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(p, [(0, 0)] * (p.ndim - 1) + [(radius, radius)], mode="symmetric")
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), -1, padded)


def power_spectra(x, smoothing: float = 20.0) -> np.ndarray:
    """(N, frequencies): each dimension's smoothed, normalised power spectrum, averaged over the batch."""
    series = _series(x)
    z = (series - series.mean(1, keepdims=True)) / series.std(1, keepdims=True).clip(min=1e-12)
    power = (np.abs(np.fft.rfft(z, axis=1)) ** 2).mean(0).T  # (N, F)
    power = _gaussian_smooth(power, smoothing).clip(min=0.0)
    constant = power.sum(1) == 0  # a constant series: all its power sits at frequency 0
    power[constant, 0] = 1.0
    return power / power.sum(1, keepdims=True)


def power_spectrum_distance(x_true, x_gen, smoothing: float = 20.0) -> float:
    """D_H: the Hellinger distance between smoothed power spectra, averaged over dimensions.

    The two trajectories are cut to the shorter length, so their spectra share frequency bins.
    """
    true, gen = _series(x_true), _series(x_gen)
    if true.shape[2] != gen.shape[2]:
        raise UsageError(f"the trajectories have {true.shape[2]} and {gen.shape[2]} dimensions")
    if not (np.isfinite(true).all() and np.isfinite(gen).all()):
        return float("nan")  # undefined over data that are not finite
    length = min(true.shape[1], gen.shape[1])
    p, q = power_spectra(true[:, :length], smoothing), power_spectra(gen[:, :length], smoothing)
    hellinger = np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(1)) / np.sqrt(2.0)
    return float(hellinger.mean())
