"""Turning a RunConfig into a task and a model."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from longrnn import runs
from longrnn.cells import cell_options
from longrnn.cells.plrnn import REGULATED_INITS
from longrnn.errors import UsageError, refused_memory
from longrnn.functional.lattice import lattice_text, parse_lattice
from longrnn.methods.regularizers import SCHEMED
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig, check_options  # noqa: F401 - check_options is used from here
from longrnn.tasks import Task, make_task, task_options
from longrnn.training.memup import MemUPModel, build_memup_model


def build_device(name: str) -> torch.device:
    """``train.device`` as a torch device; an unknown or absent one is a UsageError."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} is not available on this machine; allowed: cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; allowed: cpu, cuda, cuda:N") from None


def build_task(config: RunConfig) -> Task:
    """The task; a spatial task without its own ``lattice`` option takes the model's ``--lattice``."""
    options = dict(config.task.options)
    if config.task.seq_len is not None:
        options["seq_len"] = config.task.seq_len
    if config.model.lattice is not None and "lattice" in task_options(config.task.name):
        options.setdefault("lattice", config.model.lattice)
    return make_task(config.task.name, **options)


def lattice_options(config: RunConfig, task: Task) -> dict:
    """Lattice options for the cell: ``--lattice`` (for cells that take it; a spatial task takes it too)
    and ``--channels``. On a spatial task a lattice cell defaults to the task's lattice and a
    convolutional input map (the task's input channels laid out on that lattice)."""
    m = config.model
    takes_lattice = "lattice" in cell_options(m.cell)
    task_lattice = getattr(task, "lattice", None)
    if m.lattice is not None and not takes_lattice and task_lattice is None:
        raise UsageError(f"--lattice {m.lattice!r} applies to lattice cells (conv_unitary, conv_rnn) and spatial "
                         f"tasks; neither cell {m.cell!r} nor task {config.task.name!r} has one")
    options = {} if m.channels is None else {"channels": m.channels}
    if not takes_lattice:
        return options
    given = m.options.get("lattice", m.lattice)
    lattice = parse_lattice(given) if given is not None else task_lattice
    if lattice is not None and "lattice" not in m.options:
        options["lattice"] = lattice_text(lattice)
    if task_lattice is not None and m.options.get("input_map", "conv") == "conv":
        if lattice != tuple(task_lattice):
            raise UsageError(f"the cell's lattice {lattice_text(lattice)} differs from the task's "
                             f"{lattice_text(task_lattice)}; a convolutional input map needs the same lattice "
                             f"(or set model.input_map=linear)")
        if "input_map" not in m.options:
            options["input_map"] = "conv"
    return options


def build_model(config: RunConfig, task: Task) -> SequenceModel | MemUPModel:
    """The model of ``config``; with trainer "memup", its memory wrapped with a predictor (`MemUPModel`).
    A model too large for memory is a UsageError saying how much was asked for."""
    try:
        return _build_model(config, task)
    except (RuntimeError, MemoryError) as e:
        if (asked := refused_memory(e)) is None:
            raise
        size = f"{asked} for one weight" if asked else "more memory than there is"
        m, t = config.model, config.train
        sizes = [f"hidden_size {m.hidden_size}", f"layers {m.layers}"]
        sizes += [f"{k} {v}" for k, v in (("channels", m.channels), ("lattice", m.lattice)) if v is not None]
        sizes += [f"memup_hidden {t.memup_hidden}", f"memup_context_len {t.memup_context_len}"] * (
            t.trainer == "memup")
        raise UsageError(f"the model does not fit in memory: {m.cell} with {', '.join(sizes)} asks for {size}; "
                         "give smaller sizes") from None


def scheme_options(config: RunConfig) -> dict:
    """``reg_scheme`` for a PLRNN whose init sets the regularised units (identity, l2) under a penalty that
    takes a scheme (mar, l2): the init zeroes the W entries the penalty holds at 0, as the official code
    does with one setting. A cell option that differs from ``--reg-scheme`` is a UsageError."""
    m, t = config.model, config.train
    if t.reg not in SCHEMED or "reg_scheme" not in cell_options(m.cell):
        return {}
    if m.options.get("init", "paper") not in REGULATED_INITS:
        return {}
    given = m.options.get("reg_scheme", t.reg_scheme)
    if given != t.reg_scheme:
        raise UsageError(f"model.reg_scheme ({given!r}) and --reg-scheme ({t.reg_scheme!r}) differ; the init zeroes "
                         f"the entries the penalty holds at 0: give one of them")
    return {} if "reg_scheme" in m.options else {"reg_scheme": t.reg_scheme}


def _build_model(config: RunConfig, task: Task) -> SequenceModel | MemUPModel:
    m = config.model
    named = (("gate", m.gate), ("forget_init", m.forget_init), ("engine", m.engine))
    named_options = {k: v for k, v in named if v is not None} | scheme_options(config)
    model = SequenceModel(
        m.cell,
        task.input_size,
        m.hidden_size,
        task.output_size,
        num_layers=m.layers,
        readout=task.readout,
        dropout=m.dropout,
        fused=m.fused,
        double=m.double,
        readout_bias=m.readout_bias,
        **named_options,
        **lattice_options(config, task),
        **m.options,
    )
    if config.train.trainer == "memup":
        return build_memup_model(model, task, config.train)
    return model


def machine_memory(device: torch.device) -> int:
    """Bytes of memory on ``device``: the GPU's own, or the machine's physical memory for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def least_memory(config: RunConfig, task: Task, model: torch.nn.Module) -> int:
    """Bytes a run must hold at once, at the least: the weights and their gradients, one training batch's
    float32 inputs, the validation set's inputs, and under full backpropagation through time every
    layer's states at every step (saved for the backward pass). A lower bound (no optimizer state, gates
    or temporaries), so a run it refuses could not have run."""
    t, length, features = config.train, task.seq_len, task.input_size
    batch = t.batch_size * length * features
    fixed = (getattr(task, "validation_size", None) or 0) * length * features
    states = 0
    if t.trainer == "bptt" and not isinstance(model, MemUPModel):
        states = t.batch_size * length * sum(cell.hidden_size for cell in model.cells)
    weights = 2 * sum(p.numel() for p in model.parameters())  # and their gradients
    return 4 * (batch + fixed + states + weights)


def model_size(model: torch.nn.Module) -> str:
    """The number of weights, as "1.2e+06"."""
    return f"{sum(p.numel() for p in model.parameters()):.3g}"


def check_fits(config: RunConfig, task: Task, model: torch.nn.Module, device: torch.device) -> None:
    """A UsageError, before anything is drawn, when `least_memory` exceeds the device's memory: a sequence
    length of ten million would otherwise spend a minute drawing a batch before the machine refuses it."""
    need, have = least_memory(config, task, model), machine_memory(device)
    if need > have:
        raise UsageError(f"not enough memory: the weights, a training batch, the validation set and the states "
                         f"kept for backpropagation need at least {need / 2**30:.3g} GiB at once (seq_len "
                         f"{task.seq_len}, batch_size {config.train.batch_size}, {model_size(model)} weights), and "
                         f"{device.type} has {have / 2**30:.3g} GiB; use smaller lengths, batches, sets or widths")


DATA = "data.json"  # what a run on a user's data read: the source, its SHA-256, the split (tasks/sequences.py)


def record_data(run_dir: Path, task: Task, resumed: bool) -> None:
    """Write ``data.json`` for a task on a user's data (one with ``describe()``); on resume, check it."""
    if not hasattr(task, "describe"):
        return
    if resumed and (Path(run_dir) / DATA).exists():
        check_data(run_dir, task)
        return
    runs.write_json(Path(run_dir) / DATA, task.describe())


def check_data(run_dir: str | Path, task: Task) -> None:
    """A UsageError when the data ``task`` read is not the data run ``run_dir`` was trained on (another
    file content, or another split): its weights and scores belong to other sequences. Runs of generated
    tasks, and runs without ``data.json``, pass."""
    path = Path(run_dir) / DATA
    if not hasattr(task, "describe") or not path.exists():
        return
    saved, record = runs.read_json(path, "delete it and train the run again under a new --name"), task.describe()
    if saved.get("sha256") != record["sha256"] or saved.get("split") != record["split"]:
        raise UsageError(f"the data of run {str(run_dir)!r} changed since it was trained ({record['data']} no "
                         f"longer has the SHA-256 or split in {path}); restore the file, or train a new run")


def best_model(config: RunConfig, task: Task, run_dir: str | Path) -> SequenceModel | MemUPModel:
    """The model of run ``run_dir`` (built from ``config`` for ``task``) with its best-on-validation
    weights (``model.pt``), in eval mode; a run with no ``model.pt`` yet, or one whose data changed since
    it was trained (`check_data`), is a UsageError."""
    check_data(run_dir, task)
    path = Path(run_dir) / runs.MODEL
    if not path.exists():
        raise UsageError(f"run {str(run_dir)!r} has no {runs.MODEL}: no evaluation has finished yet, or its "
                         "weights were not kept (the runs under results/ keep none; `longrnn reproduce NAME` "
                         "trains them again)")
    model = build_model(config, task)
    advice = "train the run again (`longrnn train ... --resume` after deleting it and checkpoint.pt)"
    try:
        model.load_state_dict(runs.load_torch(path, advice))
    except RuntimeError as e:  # other keys or shapes: the weights of another model
        raise runs.DamagedFile(f"{path} does not fit the model its run's config.toml describes "
                               f"({str(e).splitlines()[0][:80]}); {advice}") from None
    return model.eval()
