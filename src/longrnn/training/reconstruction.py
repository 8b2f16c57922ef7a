"""``longrnn dsr eval RUN``: how well a trained model reconstructs its dynamical system.

For a run on a next-step task (``lorenz63``, ``bursting``, ``hindmarsh_rose``, ``dysts``, ``timeseries``),
the best-on-validation model is teacher-forced on the first ``burn_in`` samples of the test trajectory and
then runs freely for T + T/4 steps; the first T/4 free steps are dropped as a transient (the GTF protocol,
research/rplrnn.md §5.3) and the remaining T are compared with the T-sample test trajectory:

* ``state_space_divergence`` (D_stsp, 30 bins per dimension up to 5 dimensions, else the Gaussian mixture),
* ``power_spectrum_distance`` (D_H, Gaussian smoothing ``smoothing``),
* ``prediction_error`` PE(n), n = ``pe_steps``, along the test trajectory.

A driven system (task ``timeseries`` with ``inputs``) runs freely along the test trial's recorded
inputs from ``burn_in`` to the trial's end and is compared with that stretch; no transient is dropped.

The numbers go into ``summary.json`` under ``"reconstruction"`` and the generated trajectory into
``generated.npy`` (float16, standardised units: small enough to keep with a reproduction's run, so its
results page can draw the attractor without the weights); with ``plots`` the true and generated
attractors, time series and power spectra are drawn to ``attractor.png``, ``series.png``, ``spectra.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from longrnn import runs
from longrnn.dsr.metrics import power_spectra, power_spectrum_distance, state_space_divergence
from longrnn.dsr.rollout import generate, prediction_error
from longrnn.errors import UsageError, require_extra
from longrnn.tasks.dynamical import DynamicalSystemTask
from longrnn.training.build import best_model, build_task

PE_STARTS = 1000  # evenly spaced starting points for PE(n)
GENERATED = "generated.npy"


def is_reconstruction_task(name: str) -> bool:
    """Whether the task ``name`` is a dynamical system whose runs `reconstruct` can score."""
    from longrnn.tasks import task_class

    return issubclass(task_class(name), DynamicalSystemTask)


@torch.no_grad()
def reconstruct(run_dir, burn_in: int = 50, pe_steps: int = 20, smoothing: float = 20.0, plots: bool = True) -> dict:
    """Score (and draw) a run's reconstruction; returns the ``reconstruction`` entry of its summary."""
    run_dir = Path(run_dir)
    with runs.RunLock(run_dir):  # it writes summary.json and generated.npy: one writer at a time
        return _reconstruct(run_dir, burn_in, pe_steps, smoothing, plots)


def _reconstruct(run_dir: Path, burn_in: int, pe_steps: int, smoothing: float, plots: bool) -> dict:
    config = runs.read_config(run_dir)
    summary = runs.read_summary(run_dir)
    if summary is None:
        raise UsageError(f"run {str(run_dir)!r} has not finished (no summary.json); `dsr eval` scores a "
                         "finished run: finish it with `longrnn train ... --resume`")
    task = build_task(config)
    if not isinstance(task, DynamicalSystemTask):
        raise UsageError(f"run {str(run_dir)!r} is on task {config.task.name!r}, not a dynamical system")
    if config.train.trainer == "memup":
        raise UsageError(f"run {str(run_dir)!r} was trained by MemUP, whose predictor reads the input window of "
                         "each step it predicts: it has no free-running form to score; reconstruction runs train with "
                         "--trainer teacher_forcing or bptt")
    model = best_model(config, task, run_dir)

    true = task.test_trajectory[None]  # (1, T, N)
    length = true.shape[1]
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 1 <= burn_in < length:
        raise UsageError(f"burn-in (--burn-in) must be a whole number of samples in [1, {length - 1}] "
                         f"(the test trajectory has {length}), got {burn_in!r}")
    drive = None if task.test_inputs is None else task.test_inputs[None]
    if drive is None:
        generated = generate(model, true[:, :burn_in], length + length // 4)[:, length // 4 :]
    else:  # a driven system runs along the recorded inputs, as far as they go
        true = true[:, burn_in:]
        generated = generate(model, task.test_trajectory[None, :burn_in], true.shape[1], drive)
    result = {
        "state_space_divergence": state_space_divergence(true, generated),
        "power_spectrum_distance": power_spectrum_distance(true, generated, smoothing),
        f"prediction_error_{pe_steps}": prediction_error(model, task.test_trajectory[None], pe_steps,
                                                         starts=PE_STARTS, inputs=drive),
        "generated_finite": bool(torch.isfinite(generated).all()),
        "burn_in": burn_in,
        "length": true.shape[1],
        "smoothing": smoothing,
    }
    with np.errstate(over="ignore"):  # a diverged generation is kept as ±inf beyond float16's range
        np.save(run_dir / GENERATED, generated[0].numpy().astype(np.float16))
    summary["reconstruction"] = result
    runs.write_json(run_dir / runs.SUMMARY, summary)
    if plots:
        draw(run_dir, true[0].numpy(), generated[0].numpy(), task.data.variables, task.data.dt, smoothing)
    return result


def draw(run_dir: Path, true: np.ndarray, generated: np.ndarray, variables, dt: float, smoothing: float) -> None:
    """attractor.png (first three variables), series.png (first 1000 steps), spectra.png."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generated = np.where(np.isfinite(generated), generated, np.nan)
    dims = min(3, true.shape[1])
    fig = plt.figure(figsize=(10, 4.5))
    for i, (x, title) in enumerate(((true, "true (test)"), (generated, "generated"))):
        if dims == 3:
            ax = fig.add_subplot(1, 2, i + 1, projection="3d")
            ax.plot(x[:, 0], x[:, 1], x[:, 2], lw=0.3)
            ax.set_zlabel(variables[2])
        else:
            ax = fig.add_subplot(1, 2, i + 1)
            ax.plot(x[:, 0], x[:, min(1, dims - 1)], lw=0.3)
        ax.set_xlabel(variables[0])
        ax.set_ylabel(variables[min(1, dims - 1)])
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(run_dir / "attractor.png", dpi=120)
    plt.close(fig)

    steps = min(1000, len(true))
    fig, axes = plt.subplots(true.shape[1], 1, figsize=(10, 1.8 * true.shape[1]), sharex=True, squeeze=False)
    t = np.arange(steps) * dt
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t, true[:steps, i], lw=0.8, label="true")
        ax.plot(t, generated[:steps, i], lw=0.8, label="generated")
        ax.set_ylabel(variables[i])
    axes[0, 0].legend(loc="upper right")
    axes[-1, 0].set_xlabel("time")
    fig.tight_layout()
    fig.savefig(run_dir / "series.png", dpi=120)
    plt.close(fig)

    p_true = power_spectra(true, smoothing)
    p_gen = power_spectra(np.nan_to_num(generated), smoothing)
    freqs = np.fft.rfftfreq(len(true), dt)
    fig, axes = plt.subplots(1, true.shape[1], figsize=(4 * true.shape[1], 3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.semilogy(freqs, p_true[i] + 1e-12, label="true")
        ax.semilogy(freqs, p_gen[i] + 1e-12, label="generated")
        ax.set_title(variables[i])
        ax.set_xlabel("frequency")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(run_dir / "spectra.png", dpi=120)
    plt.close(fig)
