"""The dysts catalogue of chaotic systems as reconstruction data (the optional extra ``[dysts]``).

dysts (Gilpin 2021, "Chaos as an interpretable benchmark for forecasting and data-driven modelling",
NeurIPS Datasets and Benchmarks) ships 130+ chaotic flows, each with the parameters of its publication,
a dominant period and reference Lyapunov exponents estimated by its authors. Here a system is simulated
by dysts's own ``make_trajectory`` — adaptive RK45 at rtol = atol = 1e-9, sampled ``points_per_period``
times per dominant period (dysts's default is 100) — so the sampling interval is ``period /
points_per_period`` in the system's own time units, and every system is sampled alike relative to its
timescale.

Trajectories that must not be copies of one another (training, validation, test): a warm-up trajectory
of ``transient`` samples from dysts's initial condition reaches the attractor; ``n`` starting points are
drawn from it at random times (seeded) and moved by Gaussian noise of 0.05 standard deviations of the
warm-up per variable; each is integrated for ``transient + length`` samples and its first ``transient``
dropped. Chaos then separates them at the rate of the largest Lyapunov exponent: after the transient
(``transient / points_per_period`` periods) a perturbation grows by exp(λ_max · that time), e^27 for
Lorenz and e^1.7 for the weakly chaotic SprottA, whose trajectories therefore stay correlated
(`transient_growth` says it for any system).

Only autonomous ordinary differential equations are taken: delay equations and driven systems (those
dysts marks, and those whose vector field changes with t) are refused, as are trajectories that leave
the finite numbers.

Lorenz-63 in dysts uses β = 2.667 (its ``Lorenz`` parameters); `longrnn.dsr.systems` uses Lorenz's own
8/3 = 2.6667 (tests/test_dysts.py checks the two vector fields differ by exactly that term).
"""

from __future__ import annotations

import functools
import hashlib
import warnings

import numpy as np

from longrnn.errors import UsageError, check_positive, require_extra

TOLERANCE = 1e-9  # RK45's relative and absolute tolerance
WARM_UP_SPREAD = 0.05  # starting points' perturbation, in standard deviations of the warm-up trajectory


def _flows():
    require_extra("dysts", "dysts")
    with warnings.catch_warnings():  # dysts warns about its optional numba and sdeint at import
        warnings.simplefilter("ignore")
        import dysts.flows

    return dysts.flows


def reconstructible_flows() -> dict[str, object]:
    """dysts's autonomous ODE systems (the ones `dysts_flow` accepts), by name, sorted: {name: flow}."""
    flows = _flows()  # (the extra's one-line error before any import of dysts)
    from dysts.systems import get_attractor_list

    built = {name: getattr(flows, name)() for name in sorted(get_attractor_list())}
    return {name: flow for name, flow in built.items() if _refusal(flow) is None}


def _refusal(flow) -> str | None:
    """Why this module cannot reconstruct ``flow``, or None."""
    if getattr(flow, "delay", False):
        return "a delay differential equation"
    if getattr(flow, "nonautonomous", False) or _depends_on_time(flow):
        return "driven by an explicit time dependence"
    return None


def _depends_on_time(flow) -> bool:
    """Whether the vector field at dysts's initial condition changes with t (some such systems are not
    marked non-autonomous, e.g. Torus, whose field is a function of t alone)."""
    x = np.asarray(flow.ic, dtype=np.float64)
    field = getattr(flow._rhs, "py_func", flow._rhs)  # dysts's `rhs` without numba's compilation (~0.2 s each)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            a, b = (np.asarray(field(*x.T, t, *flow.param_list), dtype=np.float64) for t in (0.0, 1.2345))
    except Exception:  # noqa: BLE001 - a field that cannot be evaluated alone is left to the simulation
        return False
    return not np.allclose(a, b, rtol=1e-9, atol=1e-12)


def dysts_flow(name: str):
    """The dysts flow object ``name`` (e.g. "Lorenz", "Rossler", "HyperRossler") with its published
    parameters. UsageError for a name dysts does not have, or a system this module cannot simulate."""
    flows = _flows()
    from dysts.systems import get_attractor_list

    names = get_attractor_list()
    if not isinstance(name, str) or name not in names:
        close = [n for n in names if isinstance(name, str) and name.lower() in n.lower()][:8]
        hint = f"; did you mean {', '.join(close)}?" if close else " (`longrnn list systems` names them)"
        raise UsageError(f"dysts has no system {name!r}{hint}")
    flow = getattr(flows, name)()
    reason = _refusal(flow)
    if reason is not None:
        raise UsageError(f"dysts system {name!r} is {reason}; only autonomous ODEs are reconstructed here")
    return flow


def _trajectory(flow, start: np.ndarray, n: int, points_per_period: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = flow.make_trajectory(n, init_cond=start, pts_per_period=points_per_period, method="RK45",
                                 rtol=TOLERANCE, atol=TOLERANCE)
    if x is None or x.shape != (n, len(start)) or not np.all(np.isfinite(x)):
        raise UsageError(f"dysts system {flow.name!r} diverged (its integration left the finite numbers) from "
                         f"{np.round(start, 4).tolist()}; try another data_seed or a shorter transient")
    return np.asarray(x, dtype=np.float64)


def simulate_dysts(
    name: str, n: int, length: int, seed: int = 0, points_per_period: int = 100, transient: int = 1000
) -> np.ndarray:
    """``n`` trajectories (n, length, d) of dysts system ``name`` in its raw units, as the module
    docstring says; seeded by ``seed`` alone. The last few simulations are kept in memory (a sweep checks
    every run's task before the first starts; each takes seconds)."""
    for key, value in (("n", n), ("length", length), ("points_per_period", points_per_period),
                       ("transient", transient)):
        check_positive(key, value)
    return _simulate(name, n, length, seed, points_per_period, transient).copy()


@functools.lru_cache(maxsize=4)
def _simulate(name: str, n: int, length: int, seed: int, points_per_period: int, transient: int) -> np.ndarray:
    flow = dysts_flow(name)
    warm_up = _trajectory(flow, np.asarray(flow.ic, dtype=np.float64), transient, points_per_period)
    rng = np.random.default_rng(seed)
    picks = rng.choice(transient, size=n, replace=n > transient)
    starts = warm_up[picks] + WARM_UP_SPREAD * warm_up.std(0) * rng.normal(size=(n, warm_up.shape[1]))
    return np.stack([_trajectory(flow, start, transient + length, points_per_period)[transient:] for start in starts])


def sampling_interval(name: str, points_per_period: int = 100) -> float:
    """Time units between two samples: the system's dominant period / ``points_per_period``."""
    return float(dysts_flow(name).period) / points_per_period


def transient_growth(name: str, points_per_period: int = 100, transient: int = 1000) -> float:
    """exp(λ_max · transient time): how far chaos has pulled two starting points apart when the
    transient is dropped (dysts's reference λ_max)."""
    flow = dysts_flow(name)
    return float(np.exp(flow.maximum_lyapunov_estimated * transient * flow.period / points_per_period))


def describe_system(name: str) -> dict:
    """What dysts publishes of system ``name``: dimension, parameters, dominant period, reference
    Lyapunov exponents, and the citation of its source."""
    import importlib.metadata

    flow = dysts_flow(name)
    spectrum = getattr(flow, "lyapunov_spectrum_estimated", None)
    return {
        "system": name,
        "dimension": int(flow.dimension),
        "parameters": {k: float(v) if np.isscalar(v) else np.asarray(v).tolist() for k, v in flow.params.items()},
        "period": float(flow.period),
        "lyapunov_max": float(flow.maximum_lyapunov_estimated),
        "lyapunov_spectrum": None if spectrum is None else [float(v) for v in spectrum],
        "citation": str(getattr(flow, "citation", "") or ""),
        "dysts": importlib.metadata.version("dysts"),
    }


def array_sha256(*arrays: np.ndarray) -> str:
    """The SHA-256 of arrays' float64 bytes in order (what data.json records of generated data)."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return digest.hexdigest()
