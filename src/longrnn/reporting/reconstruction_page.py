"""The reconstruction part of a results page, for sweeps on dynamical systems (lorenz63, bursting, ...).

A sweep scores each finished run on a dynamical system as ``longrnn dsr eval`` does (D_stsp, D_H and
PE(n) in its summary, the free-running trajectory in ``generated.npy``). From those this module writes:

* `reconstruction_table`: per variant, D_stsp, D_H and PE(n) (mean ± std, then every seed) and how many
  generated trajectories stayed finite and inside the data's range (D_stsp is undefined otherwise);
* `plot_attractors`: ``<page stem>_attractors.png``, one row per task: the true test trajectory, then
  each variant's generated one (the seed with the median D_stsp), projected on two variables;
* `plot_scores`: ``<page stem>_scores.png``, D_stsp and D_H of every seed per variant (a τ sweep is
  then the paper's Fig. 3 experiment: reconstruction quality against the regularisation strength).

Everything is read from the committed run files, so a fresh clone regenerates the page without weights.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np

from longrnn.errors import require_extra
from longrnn.experiment.sweep import Sweep
from longrnn.reporting.colours import colour
from longrnn.reporting.formatting import seeds_text
from longrnn.training.reconstruction import GENERATED


def _scored(table: dict, task_label: str, variant: str) -> list[dict]:
    """The finished runs of one cell of the grid that carry a reconstruction score."""
    return [r for r in table[(task_label, variant)] if r and "reconstruction" in r["summary"]]


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _pe_key(result: dict) -> str | None:
    return next((k for k in result if k.startswith("prediction_error_")), None)


def reconstruction_table(sweep: Sweep, task_label: str, table: dict) -> str:
    """Markdown table of the reconstruction scores of one task; '' when no run of it was scored."""
    rows, pe_name = [], "PE(n)"
    for variant in sweep.variant_labels:
        scored = _scored(table, task_label, variant)
        if not scored:
            continue
        results = [r["summary"]["reconstruction"] for r in scored]
        key = _pe_key(results[0])
        if key:
            pe_name = f"PE({key.rsplit('_', 1)[1]})"
        defined = len(_finite([r["state_space_divergence"] for r in results]))
        rows.append(
            f"| {variant} | {defined}/{len(results)} | {seeds_text([r['state_space_divergence'] for r in results])} | "
            f"{seeds_text([r['power_spectrum_distance'] for r in results])} | "
            f"{seeds_text([r.get(key) for r in results]) if key else '—'} |"
        )
    if not rows:
        return ""
    header = [
        (f"Reconstruction, {task_label}: the kept model teacher-forced on the start of the test trajectory, "
         "then free-running (`longrnn dsr eval`); D_stsp = state-space divergence (0 = same distribution), "
         "D_H = power-spectrum Hellinger distance (0 = same spectra, 1 = disjoint), "
         f"{pe_name} = n-step prediction error; lower is better, mean ± std over the defined values, then every seed:"),
        "",
        f"| variant | generation finite and in range | D_stsp | D_H | {pe_name} |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(header + rows) + "\n"


def _median_seed(scored: list[dict]) -> dict:
    """The run with the median D_stsp (undefined counts as worst)."""
    def key(r):
        value = r["summary"]["reconstruction"]["state_space_divergence"]
        return value if value is not None and math.isfinite(value) else math.inf

    ranked = sorted(scored, key=key)
    return ranked[(len(ranked) - 1) // 2]


def _true_test_trajectory(run: dict) -> np.ndarray:
    from longrnn.training.build import build_task

    return build_task(run["config"]).test_trajectory.numpy()  # what `reconstruct` compared with


def plot_attractors(sweep: Sweep, table: dict, path: Path) -> bool:
    """``<page stem>_attractors.png``; returns whether any run had a generated trajectory to draw."""
    rows = []
    for task in sweep.task_labels:
        panels = []
        for variant in sweep.variant_labels:
            scored = [r for r in _scored(table, task, variant) if (r["dir"] / GENERATED).exists()]
            if scored:
                panels.append((variant, _median_seed(scored)))
        if panels:
            rows.append((task, panels))
    if not rows:
        return False
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 2.6 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, (task, panels) in enumerate(rows):
        true = _true_test_trajectory(panels[0][1])
        a, b = 0, true.shape[1] - 1  # Lorenz-63: x against z, the butterfly
        limits = [(true[:, d].min() - 0.5, true[:, d].max() + 0.5) for d in (a, b)]
        drawn = [("true (test)", true, "black", None)]
        for j, (variant, run) in enumerate(panels):
            seed, result = run["seed"], run["summary"]["reconstruction"]
            d = result["state_space_divergence"]
            if not result.get("generated_finite", True):
                label = f"{variant}\nseed {seed}: generation diverged"
            elif d is None or not math.isfinite(d):
                label = f"{variant}\nseed {seed}: generation left the data's range"
            else:
                label = f"{variant}\nseed {seed}, D_stsp {d:.3g}"
            drawn.append((label, np.load(run["dir"] / GENERATED).astype(np.float32), colour(j, len(panels)), d))
        for j, (label, x, c, _) in enumerate(drawn):
            ax = axes[i, j]
            ax.set_visible(True)
            ax.plot(x[:, a], x[:, b], lw=0.2, color=c)
            ax.set_xlim(*limits[0])
            ax.set_ylim(*limits[1])
            ax.set_title(label if j else f"{task}\n{label}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_scores(sweep: Sweep, table: dict, path: Path) -> bool:
    """``<page stem>_scores.png``: D_stsp and D_H of every seed per variant, one row per task."""
    tasks = [t for t in sweep.task_labels if any(_scored(table, t, v) for v in sweep.variant_labels)]
    if not tasks:
        return False
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = sweep.variant_labels
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 2.8 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for ax, key, name in zip(axes[i], ("state_space_divergence", "power_spectrum_distance"), ("D_stsp", "D_H")):
            for j, variant in enumerate(variants):
                values = _finite(r["summary"]["reconstruction"][key] for r in _scored(table, task, variant))
                ax.scatter([j] * len(values), values, color=colour(j, len(variants)), s=18)
                if values:
                    ax.hlines(statistics.median(values), j - 0.3, j + 0.3, color=colour(j, len(variants)))
            ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right", fontsize=7)
            ax.set_ylabel(name)
            ax.set_title(f"{task}: {name} (every seed; line: median; lower is better)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
