"""Training: full and truncated BPTT (`train`), evaluation on fixed sets (`evaluate`)."""

from longrnn.training.bptt import TRAINERS
from longrnn.training.build import best_model, build_model, build_task
from longrnn.training.evaluate import evaluate
from longrnn.training.trainer import train

__all__ = ["TRAINERS", "best_model", "build_model", "build_task", "evaluate", "train"]
