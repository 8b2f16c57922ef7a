"""VAA over training: one panel per task, one colour per configuration, one line per seed.

Reads the ``val_vaa`` entries of metrics logs (`longrnn.training.trainer`): the step-0 records
(``phase`` "init", then "warm-up") and the evaluations. A warmed-up run therefore starts with a
vertical jump at step 0, from the VAA at initialisation to the VAA after warm-up.
"""

from __future__ import annotations

from pathlib import Path

from longrnn.errors import require_extra
from longrnn.reporting.colours import colour


def vaa_points(metrics: list[dict]) -> list[tuple[int, float]]:
    """(step, VAA) of every metrics record that measured it, in the order logged."""
    return [(m["step"], m["val_vaa"]) for m in metrics if m.get("val_vaa") is not None]


def has_vaa(metrics: list[dict]) -> bool:
    """Whether a run's metrics log holds VAA measurements."""
    return bool(vaa_points(metrics))


def plot_vaa(path: Path, panels: dict[str, list[tuple[str, list[dict]]]], legend_below: bool = False) -> None:
    """``panels``: {title: [(configuration label, metrics log of one run), ...]}; writes ``path``. With
    ``legend_below`` each panel's legend stands under it (long labels, many configurations), else inside."""
    matplotlib = require_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = max(len({label for label, _ in curves}) for curves in panels.values())
    if legend_below:  # a row of axes for the plots, one under it for their legends
        fig, grid = plt.subplots(2, len(panels), figsize=(8 * len(panels), 4.0 + 0.2 * entries), squeeze=False,
                                 gridspec_kw={"height_ratios": [4.0, 0.2 * entries + 0.3]})
        axes, keys = grid[:1], grid[1]
    else:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.0), squeeze=False)
    for i, (ax, (title, curves)) in enumerate(zip(axes[0], panels.items())):
        labels = list(dict.fromkeys(label for label, metrics in curves if vaa_points(metrics)))
        drawn = set()
        for label, metrics in curves:
            if points := vaa_points(metrics):
                ax.plot(*zip(*points), color=colour(labels.index(label), len(labels)), lw=1, alpha=0.8, marker=".",
                        ms=3, label=None if label in drawn else label)
                drawn.add(label)
        ax.set(title=title, xlabel="training step (0: before training; a jump there is the warm-up)",
               ylabel="VAA (validation inputs)", ylim=(0, 1.05))
        if legend_below:
            keys[i].axis("off")
            keys[i].legend(*ax.get_legend_handles_labels(), fontsize=8.5, loc="upper left", frameon=False,
                           borderaxespad=0)
        elif drawn:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
