"""longrnn: recurrent networks that learn very long-term dependencies.

The public API, importable from here (each name is loaded when first used, so ``import longrnn`` and
the ``longrnn`` command stay quick):

    nn                             every cell as a torch layer: nn.LSTM(..., gate="fast"), nn.NBRC, ... and
                                   one-step cells nn.LSTMCell, ... (torch.nn.LSTM's constructor and shapes)
    make_cell, available_cells     a registered cell by name (longrnn.cells)
    Recurrent, SequenceModel       a cell over time; stacked layers with a readout (longrnn.models)
    make_task, available_tasks     a long-dependency task by name (longrnn.tasks)
    RunConfig, train, evaluate     one run: its configuration, training, scoring (longrnn.runs, .training)
    warm_up, measure_vaa           the warm-up to reachable multistability and its measure, on any model
                                   holding longrnn layers (vaa, vaa_star: the measures on final states)
    init.chrono_, init.uniform_gate_init_
                                   forget/update-gate initialisations of torch's and longrnn's LSTMs and GRUs
    manifold_attractor_penalty     the rPLRNN regulariser of every PLRNN layer in a model
    gate_statistics                forget/update-gate saturation and time scales of a model's layers
    UsageError                     bad input a person can fix (longrnn.errors)

The package's rooms, each importing only from the ones below it (docs/architecture.md; tested by
tests/test_layering.py):

    cli                  the `longrnn` command
    reporting, bench     results pages, reports, the leaderboard; speed and memory ratios
    experiment           grids of runs from TOML files
    training             trainers (BPTT, truncated, MemUP, teacher forcing), checkpoints, evaluation
    runs                 a run's configuration and its directory
    methods              warm-up and VAA, regularisers, gate diagnostics
    nn                   every cell as a torch-style layer (on the time loop of models)
    models, tasks        the time loop and stacked layers; tasks with memoryless baselines
    cells, dsr           one file per cell family; dynamical systems, their data and metrics
    functional           pure math: gates, the convolutional exponential, lattices
    errors               UsageError
"""

import importlib

from longrnn import _deprecated
from longrnn._version import __version__

_deprecated.install()  # old import paths of moved modules (longrnn.config, longrnn.gates, ...) until 0.3.0

_API = {
    "nn": ("longrnn.nn", None),
    "make_cell": ("longrnn.cells", "make_cell"),
    "available_cells": ("longrnn.cells", "available"),
    "Recurrent": ("longrnn.models", "Recurrent"),
    "SequenceModel": ("longrnn.models", "SequenceModel"),
    "make_task": ("longrnn.tasks", "make_task"),
    "available_tasks": ("longrnn.tasks", "available"),
    "RunConfig": ("longrnn.runs.config", "RunConfig"),
    "train": ("longrnn.training", "train"),
    "evaluate": ("longrnn.training", "evaluate"),
    "warm_up": ("longrnn.methods.warmup", "warm_up"),
    "vaa": ("longrnn.methods.warmup", "vaa"),
    "vaa_star": ("longrnn.methods.warmup", "vaa_star"),
    "measure_vaa": ("longrnn.methods.warmup", "measure_vaa"),
    "init": ("longrnn.methods.gate_init", None),
    "MemUP": ("longrnn.training.memup", "MemUP"),
    "manifold_attractor_penalty": ("longrnn.methods.regularizers", "manifold_attractor_penalty"),
    "gate_statistics": ("longrnn.methods.diagnostics", "gate_statistics"),
    "UsageError": ("longrnn.errors", "UsageError"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'longrnn' has no attribute {name!r}")
    module, attribute = _API[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_API])
