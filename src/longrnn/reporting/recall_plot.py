"""Pictures of recalled patterns for spatial tasks (tasks with a ``lattice``, e.g. ``spatial_copy``).

`plot_recalls(sweep, path)` draws, for every spatial task of a sweep, a few patterns of the
validation set (the test set is read only once, by the trainer) and what each variant's seed with
the best validation score recalls: the predicted probability of a 1 at every site, from the run's
kept weights (``model.pt``). 1-D lattices are drawn as strips. Returns False when there is nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import torch

from longrnn import runs
from longrnn.errors import require_extra
from longrnn.experiment.sweep import Sweep
from longrnn.training import best_model, build_task

N_PATTERNS = 4


def _best_on_validation(sweep: Sweep, task_label: str, variant_label: str):
    """(config, run dir) of the variant's finished seed with the best validation score (weights kept)."""
    found = []
    for run in sweep.runs:
        if (run.task_label, run.variant_label) != (task_label, variant_label):
            continue
        run_dir = Path(run.config.out) / run.config.run_name()
        summary = runs.read_summary(run_dir)
        if summary is not None and summary.get("validation") and (run_dir / runs.MODEL).exists():
            score = summary["validation"][summary["main_metric"]]
            found.append((score if summary["higher_is_better"] else -score, run.config, run_dir))
    if not found:
        return None
    _, config, run_dir = max(found, key=lambda f: f[0])
    return config, run_dir


@torch.no_grad()
def recalled(config, run_dir: Path, n: int = N_PATTERNS):
    """(patterns, probabilities), each (n, *lattice), for the first n validation sequences."""
    task = build_task(config)
    model = best_model(config, task, run_dir)
    x, y = task.validation_set()
    probabilities = torch.sigmoid(model(x[:n])[0])
    return y[:n].reshape(n, *task.lattice), probabilities.reshape(n, *task.lattice)


def _spatial_tasks(sweep: Sweep) -> list[str]:
    labels = []
    for label in sweep.task_labels:
        config = next(r.config for r in sweep.runs if r.task_label == label)
        if getattr(build_task(config), "lattice", None) is not None:
            labels.append(label)
    return labels


def plot_recalls(sweep: Sweep, path: Path, n: int = N_PATTERNS) -> bool:
    tasks = _spatial_tasks(sweep)
    panels = []  # (task label, row label, (n, *lattice) images)
    for task_label in tasks:
        target = None
        rows = []
        for variant in sweep.variant_labels:
            found = _best_on_validation(sweep, task_label, variant)
            if found is None:
                continue
            patterns, probabilities = recalled(*found, n=n)
            target = patterns
            rows.append((f"{variant}\n(seed {found[0].train.seed}, best on validation)", probabilities))
        if target is not None:
            panels += [(task_label, "pattern shown", target), *((task_label, r, img) for r, img in rows)]
    if not panels:
        return False
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), n, figsize=(1.6 * n + 2.5, 1.5 * len(panels)), squeeze=False)
    for row, (task_label, label, images) in zip(axes, panels):
        for ax, image in zip(row, images):
            grid = image if image.dim() == 2 else image.unsqueeze(0)
            ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(f"{task_label}\n{label}", fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("recalled patterns (validation set): probability of a 1 per site, white = 1", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
