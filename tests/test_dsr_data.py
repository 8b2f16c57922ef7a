"""Dynamical systems for reconstruction: RK4, known statistics of the systems, the data pipeline."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from longrnn.dsr import SYSTEMS, Standardizer, integrate, make_data, simulate
from longrnn.errors import UsageError


def spectrum(x: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.abs(np.fft.rfft(x - x.mean())) ** 2
    return np.fft.rfftfreq(len(x), dt), p


# --- RK4 -------------------------------------------------------------------------------------------------


def test_rk4_is_fourth_order_on_the_harmonic_oscillator():
    def field(x):
        return np.stack([x[..., 1], -x[..., 0]], -1)

    errors = []
    for n in (10, 20, 40):
        end = integrate(field, np.array([1.0, 0.0]), 1.0 / n, n + 1)[-1]
        errors.append(np.abs(end - [np.cos(1.0), -np.sin(1.0)]).max())
    for coarse, fine in itertools.pairwise(errors):
        assert 14 < coarse / fine < 18  # halving dt divides the error by 2^4


def test_rk4_is_fourth_order_on_lorenz63():
    f = SYSTEMS["lorenz63"].vector_field
    x0 = np.array([1.0, 1.0, 20.0])
    reference = integrate(f, x0, 0.5, 2, substeps=800)[-1]
    errors = [np.abs(integrate(f, x0, 0.5, 2, substeps=n)[-1] - reference).max() for n in (50, 100)]
    assert 12 < errors[0] / errors[1] < 20


def test_substeps_only_refine_the_integration():
    f = SYSTEMS["lorenz63"].vector_field
    x0 = np.array([[1.0, 1.0, 20.0]])
    fine = integrate(f, x0, 0.01, 11, substeps=4)
    torch.testing.assert_close(fine[::5], integrate(f, x0, 0.05, 3, substeps=20))


# --- the systems ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lorenz():
    return simulate("lorenz63", 2, 10_000, seed=0)  # 2 x 100 time units on the attractor


def test_lorenz63_statistics_and_bounds(lorenz):
    x = lorenz.reshape(-1, 3)
    # Known values for sigma = 10, rho = 28, beta = 8/3: E[z] ~ 23.5, sd(z) ~ 8.6, x and y symmetric.
    assert 22.5 < x[:, 2].mean() < 24.5
    assert 7.8 < x[:, 2].std() < 9.3
    assert abs(x[:, 0].mean()) < 2.0 and abs(x[:, 1].mean()) < 2.0
    assert np.abs(x[:, 0]).max() < 21 and np.abs(x[:, 1]).max() < 29
    assert 0 < x[:, 2].min() and x[:, 2].max() < 50
    # dz/dt = x y - beta z averages to 0 along a long orbit, so E[x y] = beta E[z].
    assert abs((x[:, 0] * x[:, 1]).mean() / (8 / 3 * x[:, 2].mean()) - 1) < 0.05


@pytest.fixture(scope="module")
def burst():
    return simulate("bursting", 1, 2000, seed=0)[0]  # 1000 ms at 0.5 ms


def test_bursting_neuron_shows_its_two_time_scales_in_the_spectrum(burst):
    dt_s = SYSTEMS["bursting"].dt / 1000
    f, p_v = spectrum(burst[:, 0], dt_s)
    low = (f > 0) & (f < 20)
    burst_frequency = f[low][np.argmax(p_v[low])]
    assert 3 < burst_frequency < 15  # the slow bursts (the paper's data: about 6.7 Hz)

    def high_share(p):
        return p[f > 50].sum() / p[1:].sum()

    assert high_share(p_v) > 0.05  # fast spikes put power far above the burst frequency
    assert high_share(spectrum(burst[:, 2], dt_s)[1]) < 0.02  # the slow gate h has almost none
    assert burst[:, 0].max() > -20 and burst[:, 0].min() < -50  # spikes and hyperpolarised troughs


def test_hindmarsh_rose_z_is_slower_than_x():
    x = simulate("hindmarsh_rose", 1, 3000, seed=0)[0]

    def centroid(i: int) -> float:
        f, p = spectrum(x[:, i], 0.1)
        return (f * p).sum() / p.sum()

    assert centroid(2) < 0.25 * centroid(0)
    assert np.isfinite(x).all() and np.abs(x).max() < 20


# --- the data pipeline --------------------------------------------------------------------------------------


def test_make_data_standardises_with_the_training_statistics():
    data = make_data("lorenz63", n_train=2, n_test=1, length=1500, seed=3)
    train = data.train.double().reshape(-1, 3)
    torch.testing.assert_close(train.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.std(0), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)  # ddof=1
    assert data.train.shape == (2, 1500, 3) and data.test.shape == (1, 1500, 3)
    assert data.test.mean().abs() > 1e-4  # the test set uses the training transform, not its own
    raw = simulate("lorenz63", 3, 1500, seed=3)
    np.testing.assert_allclose(data.standardizer.inverse(data.test.double().numpy()), raw[2:], rtol=1e-5, atol=1e-4)


def test_train_and_test_start_from_different_points():
    data = make_data("lorenz63", length=200, seed=0)
    assert (data.train[0, 0] - data.test[0, 0]).abs().max() > 0.1


def test_determinism_under_a_seed():
    a, b, c = (make_data("lorenz63", length=300, noise=0.05, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, c.train)


def test_observation_noise_goes_to_training_only():
    clean = make_data("lorenz63", length=2000, seed=4)
    noisy = make_data("lorenz63", length=2000, noise=0.05, seed=4)
    assert torch.equal(clean.test, noisy.test)
    assert 0.045 < float((noisy.train - clean.train).std()) < 0.055


def test_bursting_source_noise_has_the_papers_variances():
    with_noise = make_data("bursting", length=200, seed=0)
    without = make_data("bursting", length=200, seed=0, source_noise=False)
    assert with_noise.train.shape == (1, 200, 3)
    # Undo the (different) standardisations and compare in raw units.
    residual = with_noise.standardizer.inverse(with_noise.train[0].double().numpy())
    residual -= without.standardizer.inverse(without.train[0].double().numpy())
    np.testing.assert_allclose(residual.var(0), [0.17, 1e-3, 3e-5], rtol=0.3)  # 3 standard errors


def test_standardizer_round_trip():
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 50, 3))
    s = Standardizer.fit(x)
    np.testing.assert_allclose(s.inverse(s.transform(x)), x)


def test_bad_input():
    with pytest.raises(UsageError, match="unknown system 'lorenz'"):
        make_data("lorenz")
    with pytest.raises(UsageError, match="noise"):
        make_data("lorenz63", length=10, noise=-1.0)
    with pytest.raises(UsageError, match="length"):
        make_data("lorenz63", length=0)
