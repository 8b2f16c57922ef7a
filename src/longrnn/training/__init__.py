"""Training: a config into a trained run directory (`train`: full or truncated BPTT, MemUP, teacher
forcing; checkpoints and resume), scores on the fixed sets (`evaluate`), and the model and task a
config describes (`build_model`, `build_task`, `best_model`)."""

from longrnn.training.bptt import TRAINERS
from longrnn.training.build import best_model, build_model, build_task
from longrnn.training.evaluate import evaluate
from longrnn.training.trainer import train

__all__ = ["TRAINERS", "best_model", "build_model", "build_task", "evaluate", "train"]
