"""Which recalled symbols a copy run gets right: accuracy per recall position, on the validation set.

    python scripts/copy_positions.py results/fastgate/copy-t=200-2-symbols--*

For each run directory (with its ``model.pt``, the best-on-validation model) prints the accuracy of
each recall position and, among sequences whose symbols are distinct and whose set of symbols was
recalled right, how many came out in the right order (all of them: not an order-blind memory). The
validation set only: the test set stays read once, by the run itself.
"""

import sys

import torch

from longrnn import runs
from longrnn.training import best_model, build_task
from longrnn.training.evaluate import predict


def recall_positions(run_dir) -> tuple[list[float], int, int]:
    """Accuracy per recall position; of the sequences with distinct symbols whose set was recalled
    right, how many, and how many of them in the right order."""
    config = runs.read_config(run_dir)
    task = build_task(config)
    model = best_model(config, task, run_dir)
    x, y = task.validation_set()
    recall = task.recall
    with torch.no_grad():
        predicted = predict(model, x, 500, "cpu").argmax(-1)[:, -recall:]
    target = y[:, -recall:]
    per_position = (predicted == target).float().mean(0).tolist()
    distinct = torch.tensor([t.unique().numel() == recall for t in target])
    set_right = (predicted.sort(1).values == target.sort(1).values).all(1) & distinct
    in_order = (predicted == target).all(1) & set_right
    return per_position, int(set_right.sum()), int(in_order.sum())


if __name__ == "__main__":
    torch.set_num_threads(2)
    for path in sys.argv[1:]:
        for run_dir in runs.find_runs([path]):
            if runs.read_config(run_dir).task.name != "copy":
                continue
            per_position, set_right, in_order = recall_positions(run_dir)
            positions = ", ".join(f"{a:.2f}" for a in per_position)
            print(f"{run_dir.name}: accuracy per recall position {positions}; "
                  f"in the right order {in_order} of {set_right} distinct sets recalled right")
