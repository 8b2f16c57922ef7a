"""Start training from another run's weights (``--init-from RUN``): continuing or fine-tuning a run.

The source is a run directory (its best-on-validation ``model.pt``) or a state-dict file. The weights
must fit the new model exactly, with one exception: a MemUP model (memory + predictor) can start from a
plain `SequenceModel` run (trained with bptt / tbptt), which becomes the memory (whose linear head
MemUP does not use); the predictor then starts fresh.

Typical use: continue a finished run with a new schedule, or at another length (docs/results/memup.md
continues a copy run at delay 5,000 with a decaying learning rate):

    longrnn train --task copy --seq-len 5000 --trainer memup ... --name first
    longrnn train --task copy --seq-len 5000 --trainer memup ... --schedule cosine --init-from runs/first

(A length curriculum inside one run is ``--curriculum``, training/curriculum.py.)

Shapes do not depend on the sequence length, so only the task's length changes between the two.
The optimiser, the schedule and the step count start afresh; the new run's config records the source.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from longrnn import runs
from longrnn.errors import UsageError


def weights_file(source: str) -> Path:
    """The state-dict file that ``source`` (a run directory or a .pt file) names; UsageError if none."""
    path = Path(source)
    file = path / runs.MODEL if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"init_from: no weights at {str(file)!r}; give a run directory that holds "
                         f"{runs.MODEL} or a state-dict file")
    return file


def load_initial_weights(model: nn.Module, source: str) -> None:
    """Copy the weights that ``source`` names into ``model`` (in place), or raise UsageError naming the misfit."""
    state = runs.load_torch(weights_file(source), f"init_from {source!r} needs a state dict saved by torch.save")
    target, kind = model, "model"
    memory = getattr(model, "memory", None)
    if memory is not None and not any(key.startswith("memory.") for key in state):
        target, kind = memory, "MemUP memory"
    own = target.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = [f"{key} {tuple(state[key].shape)} vs {tuple(own[key].shape)}"
                 for key in own if key in state and state[key].shape != own[key].shape]
    if missing or unexpected or misshapen:
        problems = [("missing", missing), ("unexpected", unexpected), ("of another shape", misshapen)]
        said = "; ".join(f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                         for what, keys in problems if keys)
        raise UsageError(f"init_from {source!r}: its weights do not fit this {kind} ({said}); "
                         f"use a run with the same cell, sizes and layers")
    target.load_state_dict(state)
