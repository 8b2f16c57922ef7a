"""Memoryless and floor references for a reconstruction results page (docs/results/dsr.md, dysts.md,
daphnet.md), measured on the very test data its runs are scored on.

For each task of a sweep file (one run per task is enough: the data do not depend on the run's seed):

* persistence, the predictor without memory: its one-step MSE and its n-step prediction error PE(n)
  (x̂ₜ₊ₙ = xₜ), the reference for a model's PE(n);
* another true trajectory: D_stsp and D_H between the held-out validation trajectory and the test
  trajectory, both the real system (or recording). A model's free generation cannot be expected to come
  closer to the test trajectory than a second sample of the truth does, so this is the floor of the two
  measures at this length and binning;
* the mean: D_H of a constant generation (the training mean; D_stsp of a constant is left out, its
  histogram is one bin).

    python scripts/dsr_references.py experiments/dysts.toml       (prints a Markdown table)
"""

from __future__ import annotations

import sys

import torch

from longrnn.dsr.metrics import power_spectrum_distance, state_space_divergence
from longrnn.experiment.sweep import load_sweep
from longrnn.training.build import build_task

PE_STEPS = 20


def references(task) -> dict[str, float]:
    true, other = task.test_trajectory, task.validation_trajectory
    length = min(len(true), len(other))
    persistence_pe = float((true[PE_STEPS:] - true[:-PE_STEPS]).square().mean())
    return {
        "persistence MSE": task.baseline("test")["mse"],
        f"persistence PE({PE_STEPS})": persistence_pe,
        "D_stsp, another true trajectory": state_space_divergence(true[None], other[None, :length]),
        "D_H, another true trajectory": power_spectrum_distance(true[None], other[None, :length]),
        "D_H, the mean": power_spectrum_distance(true[None], torch.zeros_like(true)[None]),
    }


def main(path: str) -> None:
    sweep = load_sweep(path)
    rows = {}
    for run in sweep.runs:
        if run.task_label not in rows:
            rows[run.task_label] = references(build_task(run.config))
    names = list(next(iter(rows.values())))
    print("| task | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, values in rows.items():
        print(f"| {label} | " + " | ".join(f"{v:.3g}" for v in values.values()) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/dysts.toml")
