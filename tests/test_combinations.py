"""Every cell (with every gate and keep-gate initialisation it takes) x trainer x task composes.

The grid is read from the registries, so a newly registered cell, task or trainer is covered
automatically (a task also needs a tiny setting in TINY_TASKS, which a test enforces). Each
combination builds from one RunConfig and takes one optimisation step; the loss must be finite and
every parameter that the loss touches must receive a gradient. Invalid combinations fail with a
UsageError that names the bad value.
"""

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from longrnn.cells import available as available_cells
from longrnn.errors import UsageError
from longrnn.methods.regularizers import model_penalty
from longrnn.runs.config import RunConfig, from_dict
from longrnn.tasks import available as available_tasks
from longrnn.training.bptt import TRAINERS, training_loss
from longrnn.training.build import build_model, build_task
from longrnn.training.memup import MemUP


def _user_data() -> str:
    """A user's tiny .npz for task 'sequences': sequences of different lengths (every trainer takes them;
    the padding-invariance tests are tests/test_variable_length_trainers.py)."""
    path = Path(tempfile.mkdtemp(prefix="longrnn-combinations-")) / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(20, 5, 2)), y=np.arange(20) % 3, lengths=2 + np.arange(20) % 4)
    return str(path)


def _user_recording() -> str:
    """A user's tiny recording for task 'timeseries': 60 samples of 2 variables."""
    path = Path(tempfile.mkdtemp(prefix="longrnn-combinations-")) / "tiny.npy"
    np.save(path, np.random.default_rng(0).normal(size=(60, 2)))
    return str(path)


TINY_TASKS = {
    "sequences": {"options": {"data": _user_data()}},
    "timeseries": {"seq_len": 8, "options": {"data": _user_recording(), "validation_size": 4, "test_size": 4}},
    "adding": {"seq_len": 6},
    "multiplication": {"seq_len": 6},
    "copy": {"seq_len": 3},
    "copy_first": {"seq_len": 6},
    "denoising": {"seq_len": 12},
    "digits": {"options": {"rows": True}},
    "spatial_copy": {"seq_len": 3, "options": {"lattice": "4x4", "validation_size": 8, "test_size": 8}},
    "scattered_copy": {"seq_len": 3},
    "tmaze": {"seq_len": 6},
    "lorenz63": {"seq_len": 8, "options": {"length": 200, "validation_size": 4, "test_size": 4}},
    "bursting": {"seq_len": 8, "options": {"length": 200, "validation_size": 4, "test_size": 4}},
    "hindmarsh_rose": {"seq_len": 8, "options": {"length": 200, "validation_size": 4, "test_size": 4}},
    "dysts": {"seq_len": 8, "options": {"system": "Rossler", "length": 200, "transient": 50, "validation_size": 4,
                                        "test_size": 4}},  # (the extra [dysts]; the simulation is kept in memory)
}
GATED = {"lstm", "gru"}
GATES = ["sigmoid", "fast", "softsign", "refine"]
INITS = ["default", "chrono:6", "uniform", "constant:2"]


def cell_settings() -> list[dict]:
    settings = []
    for cell in sorted(available_cells()):
        if cell in GATED:
            settings += [{"cell": cell, "gate": g, "forget_init": i} for g, i in itertools.product(GATES, INITS)]
        else:
            settings.append({"cell": cell})
    return settings


NEXT_STEP_TASKS = {"lorenz63", "bursting", "hindmarsh_rose", "dysts", "timeseries"}  # teacher forcing's tasks


def valid(trainer: str, task: str) -> bool:
    return trainer != "teacher_forcing" or task in NEXT_STEP_TASKS


def one_step(model_settings: dict, task: str, trainer: str, reg: str = "none") -> None:
    config: RunConfig = from_dict({
        "task": {"name": task, **TINY_TASKS[task]},
        "model": {"hidden_size": 16, **model_settings},
        "train": {"trainer": trainer, "tbptt_len": 4, "tf_interval": 3, "batch_size": 3, "reg": reg,
                  "memup_rollout": 3, "memup_targets": 2, "memup_predict_every": 2, "memup_hidden": 8},
    })
    torch.manual_seed(0)
    task_ = build_task(config)
    model = build_model(config, task_)
    if trainer == "memup":
        memup = MemUP.from_config(model, task_, config.train, torch.device("cpu"))
        loss = memup.loss(torch.Generator().manual_seed(0))
    else:
        x, y = task_.sample(3, torch.Generator().manual_seed(0))
        loss = training_loss(config.train, model, task_, x, y)
    penalty = model_penalty(model, config.train.reg, config.train.tau, config.train.reg_fraction)
    (loss if penalty is None else loss + penalty).backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    torch.optim.Adam(model.parameters(), lr=1e-3).step()


def test_every_task_has_a_tiny_setting():
    assert set(available_tasks()) <= set(TINY_TASKS)


@pytest.mark.parametrize("model_settings", cell_settings(), ids=lambda s: "-".join(map(str, s.values())))
def test_every_cell_setting_trains_one_step(model_settings):
    one_step(model_settings, "adding", "bptt")


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_every_cell_trains_one_step_on_every_task_with_every_trainer(cell, trainer):
    model_settings = {"cell": cell, "gate": "fast"} if cell in GATED else {"cell": cell}
    for task in sorted(available_tasks()):
        if valid(trainer, task):
            one_step(model_settings, task, trainer)
        else:
            with pytest.raises(UsageError, match=f"--trainer {trainer} needs"):
                one_step(model_settings, task, trainer)


@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_the_manifold_attractor_penalty_composes_with_the_plrnn_and_names_the_others(cell):
    if cell == "plrnn":
        for trainer, task in [("bptt", "adding"), ("tbptt", "copy"), ("teacher_forcing", "lorenz63")]:
            one_step({"cell": cell}, task, trainer, reg="mar")
    else:
        with pytest.raises(UsageError, match=cell):
            one_step({"cell": cell}, "adding", "bptt", reg="mar")


@pytest.mark.parametrize("settings, match", [
    ({"cell": "rnn", "gate": "fast"}, "option 'gate'"),
    ({"cell": "lstm", "gate": "slow"}, "unknown gate 'slow'"),
    ({"cell": "gru", "forget_init": "chrono:-1"}, "chrono"),
    ({"cell": "gru", "engine": "compiled"}, "unknown engine 'compiled'; allowed: auto, cpp, step, triton"),
    ({"cell": "rnn", "engine": "triton"}, "option 'engine'"),
])
def test_invalid_combinations_name_the_bad_value(settings, match):
    with pytest.raises(UsageError, match=match):
        one_step(settings, "adding", "bptt")


@pytest.mark.parametrize("double", [False, True], ids=["single", "double"])
@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_warm_up_composes_with_every_cell_single_or_double(cell, double):
    """Two warm-up steps (reachable states, constant-input runs, VAA* backward), then one training step."""
    from longrnn.training.warmup_phase import warm_up_before_training

    settings = {"cell": cell, "double": double, **({"gate": "fast"} if cell in GATED else {})}
    config = from_dict({"task": {"name": "adding", **TINY_TASKS["adding"]}, "model": {"hidden_size": 4, **settings},
                        "train": {"warmup": True, "warmup_num_steps": 2, "warmup_batch_size": 3,
                                  "warmup_stabilization_increment": 3}})
    torch.manual_seed(0)
    task = build_task(config)
    model = build_model(config, task)
    history = warm_up_before_training(config, model, task, torch.device("cpu"), quiet=True)
    assert len(history["loss"]) == 2 and all(torch.isfinite(torch.tensor(v)).all() for v in history["vaa_star"])
    one_step(settings, "adding", "bptt")
