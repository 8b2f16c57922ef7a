"""Run configuration: four dataclasses, TOML in and out, and ``--set section.key=value`` overrides.

    RunConfig(task=TaskConfig(...), model=ModelConfig(...), train=TrainConfig(...), out="runs")

Every leaf key is also a CLI flag with dashes (``train.batch_size`` is ``--batch-size``), except
``task.name`` (``--task``) and ``model.cell`` (``--cell``). Keys a task or cell accepts beyond these
fields (e.g. ``--set task.permuted=true``, ``--set model.nonlinearity=tanh``) go into its ``options``
table and are checked by `make_task` / `make_cell`. A key that exists nowhere is a `UsageError`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import io
import json
import math
import re
import tokenize
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from longrnn.errors import UsageError, deprecated


@dataclass
class TaskConfig:
    """The `[task]` section: which problem, at what length, with which of its own options."""

    name: str = "adding"  # the task (`longrnn list tasks` names them)
    seq_len: int | None = None  # steps per sequence (None: the task's default; tasks without a length take none)
    options: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The `[model]` section: the recurrent cell and the network built around it (`longrnn.models`)."""

    cell: str = "lstm"  # the recurrent cell (`longrnn list cells`; torchrecurrent:NAME with that extra)
    hidden_size: int = 128  # units per layer
    layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # dropout between stacked layers
    fused: bool = True  # use a cell's fused whole-sequence kernel where it has one
    gate: str | None = None  # lstm/gru forget/update gate: sigmoid, fast, softsign, refine (None: sigmoid)
    forget_init: str | None = None  # lstm/gru: default, constant:V, chrono:T_MAX, uniform (None: default)
    engine: str | None = None  # speed only: lstm/gru cpp|triton, brc/nbrc/mgu/plrnn triton, conv/orthogonal graph
    lattice: str | None = None  # conv cells and spatial tasks: "32x32" or "64" (None: the cell's / task's own)
    channels: int | None = None  # conv cells: channels per lattice site (None: hidden_size / sites; 1 without lattice)
    double: bool = False  # every layer two cells of half the width on the same input (warm-up's double layer)
    readout_bias: bool = True  # the linear readout's bias (the rPLRNN benchmark code's B has none)
    options: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    """The `[train]` section: the trainer, optimisation, evaluation, methods applied beside the loss, and
    where the run executes (device, threads)."""

    trainer: str = "bptt"  # bptt (full), tbptt (truncated, chunks of tbptt_len steps), memup
    tbptt_len: int = 50  # tbptt: steps per truncated chunk
    tf_interval: int = 25  # teacher_forcing: the data replace the input every tf_interval steps
    tf_alpha: float = 0.0  # teacher_forcing: input = alpha data + (1 - alpha) prediction in between (GTF)
    steps: int = 5000  # optimisation steps (one batch each)
    batch_size: int = 64  # sequences per training batch
    lr: float = 3e-3  # learning rate
    optimizer: str = "adam"  # adam, rmsprop, sgd
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # L2 weight decay of the optimiser
    clip: float = 1.0  # max gradient norm
    reg: str = "none"  # penalty added to the loss: none, mar (rPLRNN), l2, l4, orthogonal (methods/regularizers.py)
    tau: float = 5.0  # tau_A = tau_W of the penalty (mar: the paper's 5, on means)
    reg_fraction: float = 0.5  # mar, l2, l4: the first int(M * reg_fraction) units are regularised
    reg_scheme: str = "rows"  # mar, l2: W entries penalised: rows (official "R"), columns ("L"), full ("F")
    tau_c: float = 0.0  # mar, l2: weight of the penalty on the regularised units' input weights C (official 0)
    schedule: str = "constant"  # constant, cosine, step
    lr_warmup_steps: int = 0  # linear learning-rate warm-up (was warmup_steps, accepted until 0.3.0)
    eval_every: int = 100  # steps between evaluations on the validation set (the best is kept)
    eval_batch_size: int = 500  # sequences per batch when scoring the fixed sets
    diagnostics: bool = True  # log gate saturation and time scales at each evaluation (gated cells)
    test_lengths: str = ""  # L1,L2,...: also test the best model at these lengths (training/length_test.py)
    test_lengths_size: int = 100  # sequences in each of those test sets
    test_lengths_options: str = ""  # KEY=VALUE,...: task options changed for those tests (variable_delay=false)
    stop_when_solved: bool = True  # stop at the first evaluation that reaches the task's solved score
    seed: int = 0  # the run's seed (training, validation and test sets draw from separate streams)
    device: str = "cpu"  # cpu, cuda, cuda:N (a torch device name)
    ddp: bool = False  # data-parallel over the processes torchrun starts (effective batch: processes x batch_size)
    threads: int = 0  # torch.set_num_threads; 0 keeps torch's default
    log: str = ""  # experiment trackers, comma-separated: tensorboard, mlflow, wandb (runs/trackers.py)
    init_from: str = ""  # start from this run's model.pt (or a state-dict file): fine-tuning (training/init_from.py)
    curriculum: str = ""  # LEN:BATCHES,...: draw the first batches at shorter lengths (training/curriculum.py)
    # trainer "memup" (training/memup.py); defaults from the official code's copy-task script
    memup_rollout: int = 20  # r: steps per truncated rollout (the carried state is detached between them)
    memup_targets: int = 10  # K: most uncertain future steps each prediction step predicts
    memup_predict_every: int = 10  # f: predict every f steps of a rollout, and at its last step
    memup_random_phase: bool = False  # draw where the every-f prediction steps fall in each rollout
    memup_current_step: bool = False  # also predict y_t from m_t at each prediction step (official T-Maze script)
    memup_predictor: str = "mlp"  # mlp, local_rnn
    memup_hidden: int = 256  # predictor (and local detector) width
    memup_context_len: int = 1  # input steps up to k that the predictor sees beside m_t
    memup_detector: str = "ema"  # ema (EMA copy of memory + predictor), local (memoryless, trained online)
    memup_ema_decay: float = 0.995  # EMA detector: decay per update (official T-Maze script; copy script 0.97)
    memup_ema_every: int = 1  # EMA detector: optimisation steps between updates (official copy script 2000)
    memup_detector_lr: float = 1e-3  # local detector: Adam learning rate
    memup_local_samples: int = 1024  # local detector: (sequence, step) pairs per update
    memup_chunk_len: int = 1000  # steps per chunk when whole sequences run without gradients
    # the official code's other options (training/memup_targets.py, training/memup_schedule.py); the official
    # copy script's values: future, 0, -, 0.1, alternating, 20000, 1000, true (with ema_decay 0.97, ema_every 2000)
    memup_selection: str = "future"  # future (top-K of the steps k >= t), global (of the whole sequence)
    memup_temperature: float = 0.0  # 0: top-K; > 0: sampled, P(k) ∝ exp(u_k/T) (official: top-K; its sampler 0.25)
    memup_resample_every: int = 20  # future sampling: prediction steps between fresh Gumbel noise (official 20)
    memup_loss_weight: float = 1.0  # the memory's loss is multiplied by this (official copy script 0.1)
    memup_schedule: str = "joint"  # joint (memory and predictor together), alternating (official copy script's)
    memup_pretrain_steps: int = 0  # alternating: predictor-only steps on current-step targets first (official 20000)
    memup_phase_steps: int = 1000  # alternating: steps of each memory phase and each predictor phase (official 1000)
    memup_eval_ema: bool = False  # evaluate, and keep as the best weights, the EMA copy (detector ema; official: on)
    # warm-up before training (longrnn.methods.warmup); defaults from the official code's supervised.py
    warmup: bool = False  # maximise reachable multistability (VAA*) before training
    warmup_num_steps: int = 100  # warm-up gradient steps (not lr_warmup_steps, the learning-rate warm-up)
    warmup_lr: float = 1e-2  # warm-up Adam learning rate (its own optimiser; training starts a fresh one)
    warmup_batch_size: int = 32  # input sequences per warm-up step (n in VAA*)
    warmup_eps: float = 1e-4  # ε of VAA and VAA*: states closer than this share an attractor
    warmup_target: float = 0.95  # warm-up loss: mean over layers of (VAA*_l - target)²
    warmup_stabilization_increment: int = 10  # curriculum: S ~ U{1..min(1 + k·increment, max)} at step k
    warmup_stabilization_max: int = 200  # curriculum: the largest S
    warmup_partial: bool = True  # double layers: warm only the first half of each layer
    # measure the hard VAA at initialisation and at each evaluation (with --warmup: always before/after it)
    vaa: bool = False
    vaa_steps: int = 10_000  # constant-input steps of the VAA measurement
    vaa_samples: int = 32  # validation sequences of the VAA measurement (VAA lies in [1/n, 1])
    vaa_batches: int = 0  # with vaa: also the mean VAA of this many random batches of training inputs (official: 10)


@dataclass
class RunConfig:
    """Everything that defines one run: its three sections, and where its directory is written. Read with
    `load` (TOML), changed with `set_key`/`apply_overrides`, checked with `check_ranges`."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs"
    name: str = ""  # run directory name; empty: derived from the config

    def to_dict(self) -> dict:
        """The config as nested plain dicts (what config.toml holds)."""
        return dataclasses.asdict(self)

    def identity(self) -> str:
        """A short hash of everything that defines the experiment except the seed and where it is written.

        Only values that differ from the defaults enter the hash, so a setting added in a later
        release (whose default keeps the old behaviour) leaves the identity of existing runs, and
        with it their resumability, unchanged.
        """
        d = self.to_dict()
        for key in ("out", "name"):
            d.pop(key)
        d["train"].pop("seed")
        d["train"].pop("threads")
        d["train"].pop("log")  # where a run is mirrored to does not change what it computes
        d = _non_default(d, RunConfig().to_dict())
        for old, new in RENAMED.items():  # hashed under the name the key had when identities began
            (section, new_name), old_name = new.split("."), old.split(".")[1]
            if new_name in d.get(section, {}):
                d[section][old_name] = d[section].pop(new_name)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]

    def run_name(self) -> str:
        """The run directory's name: ``name`` if given, else TASK[-T{seq_len}]-CELL-h{hidden}-{identity}-s{seed}."""
        if self.name:
            return self.name
        length = f"-T{self.task.seq_len}" if self.task.seq_len is not None else ""
        task = f"{self.task.name}{source_label(self.task.options)}{length}"
        cell = self.model.cell.replace(":", "-")  # torchrecurrent:NAME: no colon in a folder's name
        return f"{task}-{cell}-h{self.model.hidden_size}-{self.identity()}-s{self.train.seed}"


def source_label(options: dict) -> str:
    """"-NAME" for a task on named data: a dysts system, or a data file's stem ("aeon:NAME" gives NAME)."""
    source = options.get("system") or options.get("data")
    if not isinstance(source, str) or not source.strip():
        return ""
    name = source.split(":", 1)[1] if source.startswith("aeon:") else Path(source).stem
    return "-" + re.sub(r"[^A-Za-z0-9_.]+", "_", name)[:40]


def _non_default(d: dict, default: dict) -> dict:
    """The entries of nested dict ``d`` whose values differ from those in ``default``."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and isinstance(default.get(key), dict):
            value = _non_default(value, default[key])
            if value:
                out[key] = value
        elif key not in default or value != default[key]:
            out[key] = value
    return out


# Keys renamed in 0.2.0 (one meaning per name): old key -> new key. The old keys are read, with a
# deprecation message, until 0.3.0; identity hashes keep the old names, so runs keep their identity.
RENAMED = {"train.warmup_steps": "train.lr_warmup_steps"}

SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}
FLAG_NAMES = {"task.name": "task", "model.cell": "cell"}
FLAG_HELP = {  # --help text where the field's comment (flag_help) would not serve a user, or a name could mislead
    "train.lr_warmup_steps": "linear learning-rate warm-up steps (not the multistability warm-up: see --warmup)",
    "train.warmup": "warm the recurrent layers up to reachable multistability before training (longrnn.methods.warmup)",
    "train.warmup_num_steps": "gradient steps of that warm-up",
    "train.warmup_partial": "with --double: warm up only the first half of each layer",
    "train.vaa": "log the reachable multistability VAA at initialisation and at every evaluation",
    "train.test_lengths": "after training, also test the best model at these lengths, e.g. 1000,100000 (length "
                          "generalisation, in summary.json)",
    "train.test_lengths_size": "sequences in each test set of --test-lengths",
    "train.test_lengths_options": "task options changed for the tests of --test-lengths, e.g. variable_delay=false",
    "model.double": "every layer two cells of half the width on the same input (the warm-up paper's double layer)",
}


def flag_help(key: str) -> str:
    """What ``--help`` says of the flag of ``key`` ("section.name"), before its range and default: its
    `FLAG_HELP` entry, else the comment beside the field in this file ("" when it has none)."""
    if key in FLAG_HELP:
        return FLAG_HELP[key]
    section, name = key.split(".")
    return _field_comments(SECTIONS[section]).get(name, "")


@functools.cache
def _field_comments(cls) -> dict[str, str]:
    """{field name: the comment on its line} of dataclass ``cls``, read from its source (empty without it)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source file shipped
        return {}
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (field_line := re.match(r"\s+(\w+)\s*:", token.line)):
            comments[field_line.group(1)] = token.string.lstrip("# ").strip()
    return comments


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric key: ``low`` to ``high`` (None: no upper bound), each end open or
    closed; ``text`` says it the way --help and errors print it, with ``why`` in parentheses."""

    low: float
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def contains(self, value) -> bool:
        """Whether ``value`` lies in the range."""
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    @property
    def text(self) -> str:
        if self.high is None:
            said = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        else:
            said = (f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}"
                    f"{')' if self.high_open else ']'}")
        return f"{said} ({self.why})" if self.why else said


def _number(x) -> str:
    """1000000000 as 10^9 (a power of ten from a million up), anything else as Python writes it."""
    power = len(str(x)) - 1
    return f"10^{power}" if isinstance(x, int) and x >= 10**6 and x == 10**power else str(x)


# The range of every numeric key, checked by `check_ranges` before anything is built and shown by --help.
# Non-finite values (nan, inf) are refused for every float key when it is set.
POSITIVE, NON_NEGATIVE, FRACTION, OPEN_FRACTION = Range(1), Range(0), Range(0, 1), Range(0, 1, high_open=True)
ABOVE_ZERO = Range(0, low_open=True)
SEED_LIMIT = 2**63 - 1  # torch.manual_seed takes a 64-bit seed
RANGES = {
    "task.seq_len": Range(1, 10**9), "model.hidden_size": Range(1, 10**6), "model.layers": Range(1, 1000),
    "model.channels": POSITIVE, "model.dropout": OPEN_FRACTION,
    "train.tbptt_len": POSITIVE, "train.tf_interval": POSITIVE, "train.tf_alpha": FRACTION, "train.steps": POSITIVE,
    "train.batch_size": Range(1, 10**7), "train.lr": ABOVE_ZERO, "train.momentum": FRACTION,
    "train.weight_decay": NON_NEGATIVE, "train.clip": Range(0, why="0 turns clipping off"),
    "train.tau": NON_NEGATIVE, "train.reg_fraction": FRACTION, "train.tau_c": NON_NEGATIVE,
    "train.lr_warmup_steps": NON_NEGATIVE,
    "train.eval_every": POSITIVE, "train.eval_batch_size": POSITIVE, "train.test_lengths_size": POSITIVE,
    "train.seed": Range(0, SEED_LIMIT), "train.threads": Range(0, 1024),
    "train.memup_rollout": POSITIVE, "train.memup_targets": POSITIVE, "train.memup_predict_every": POSITIVE,
    "train.memup_hidden": POSITIVE, "train.memup_context_len": POSITIVE, "train.memup_ema_decay": OPEN_FRACTION,
    "train.memup_ema_every": POSITIVE, "train.memup_detector_lr": ABOVE_ZERO,
    "train.memup_local_samples": POSITIVE, "train.memup_chunk_len": POSITIVE,
    "train.memup_temperature": NON_NEGATIVE, "train.memup_resample_every": POSITIVE,
    "train.memup_loss_weight": ABOVE_ZERO, "train.memup_pretrain_steps": NON_NEGATIVE,
    "train.memup_phase_steps": POSITIVE,
    "train.warmup_num_steps": NON_NEGATIVE, "train.warmup_lr": ABOVE_ZERO,
    "train.warmup_batch_size": Range(2, why="VAA* compares states"),
    "train.warmup_eps": ABOVE_ZERO, "train.warmup_target": Range(0, 1, low_open=True, why="VAA* lies in [1/n, 1]"),
    "train.warmup_stabilization_increment": NON_NEGATIVE, "train.warmup_stabilization_max": POSITIVE,
    "train.vaa_steps": POSITIVE, "train.vaa_samples": Range(2, why="VAA compares states"),
    "train.vaa_batches": Range(0, 1000),
}


def check_ranges(config: RunConfig) -> None:
    """Every numeric key within its range (`RANGES`), else a UsageError naming the key, value and range."""
    for key, allowed in RANGES.items():
        value = get_key(config, key)
        if value is not None and not allowed.contains(value):  # None: the task's or cell's own default
            raise UsageError(f"{key} must be {allowed.text}, got {value!r}")


def check_options(config: RunConfig) -> None:
    """The task and cell names and every option the config gives them, checked against their constructors
    without building anything (a sweep checks all its runs this way before the first one starts). The
    registries are imported here, not above: reading a config (the CLI's start) does not load torch."""
    from longrnn.cells.registry import check_cell_options
    from longrnn.tasks.registry import check_task_options

    check_task_options(config.task.name, config.task.options)  # an unknown task name is a UsageError here
    m = config.model
    given = [*m.options, *(k for k in ("gate", "forget_init", "engine", "channels") if getattr(m, k) is not None)]
    check_cell_options(m.cell, given)


def leaf_keys() -> list[str]:
    """Every dotted key of the config, e.g. ``train.lr``, except the free-form ``options`` tables."""
    keys = []
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls) if f.name != "options"]
    return keys + ["out", "name"]


def flag_name(key: str) -> str:
    """The command-line flag of a config key, without dashes: ``train.tbptt_len`` -> ``tbptt-len``."""
    return FLAG_NAMES.get(key, key.split(".")[-1]).replace("_", "-")


def _plain(value) -> bool:
    """True for what a ``--set`` value may become besides a string: a bool, number or list of them."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))


def parse_value(text: str):
    """Read a ``--set`` value as TOML does: true/false, a decimal int, a float, a [list], else a plain
    string. TOML's other readings stay strings (``0x4`` is not 4, ``1979-05-27`` is not a date), so a
    value meant as text, e.g. a lattice, reaches its own check as typed."""
    if re.match(r"^[+-]?0[xob]", text.strip()):
        return text
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if _plain(value) else text


def field_type(cls, name: str) -> type:
    """The scalar type of a dataclass field, read from its annotation (``int | None`` -> int)."""
    annotation = {f.name: f.type for f in dataclasses.fields(cls)}[name]
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return {"bool": bool, "int": int, "float": float, "str": str}[text.split("|")[0].strip()]


def _coerce(key: str, value, kind: type):
    """Convert ``value`` to the field's type ``kind``, with a clear error if it can't be."""
    if value is None:
        return value
    if kind is bool:
        if isinstance(value, bool):  # never the text "true": a quoted value is text, as in a cell's options
            return value
    elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise UsageError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    elif (kind is int and isinstance(value, int) and not isinstance(value, bool)
          or kind is str and isinstance(value, str)):
        return value
    raise UsageError(f"{key} must be of type {kind.__name__}, got {value!r}")


def _current_name(key: str) -> str:
    """``key`` under its name in this release; a renamed one (`RENAMED`) with a deprecation message."""
    if key in RENAMED:
        deprecated(f"config key {key}", RENAMED[key], stacklevel=4)  # attributed to set_key's caller
        return RENAMED[key]
    return key


def set_key(config: RunConfig, key: str, value) -> None:
    """Set a dotted key, e.g. ``set_key(c, "train.lr", 1e-3)`` or ``set_key(c, "task.permuted", True)``.
    A key renamed in this release (`RENAMED`) sets the new key, with a deprecation message naming it."""
    key = _current_name(key)
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in ("out", "name"):
        setattr(config, parts[0], _coerce(key, value, str))
        return
    if parts[0] not in SECTIONS or len(parts) < 2:
        raise UsageError(f"unknown config key {key!r}; allowed: {', '.join(leaf_keys())} (or task.X / model.X options)")
    section = getattr(config, parts[0])
    names = {f.name for f in dataclasses.fields(section)}
    if parts[1] == "options" and len(parts) == 3:
        parts = [parts[0], parts[2]]
    if len(parts) != 2:
        raise UsageError(f"unknown config key {key!r}")
    name = parts[1]
    if key == "train.log" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ",".join(value)  # log = ["tensorboard", "mlflow"] in TOML, as "tensorboard,mlflow"
    elif key == "train.log" and not isinstance(value, str):
        raise UsageError(f"train.log names trackers: a list of names or a comma-separated text, e.g. "
                         f"[\"tensorboard\", \"mlflow\"] or \"tensorboard,mlflow\"; got {value!r}")
    if name in names and name != "options":
        setattr(section, name, _coerce(key, value, field_type(SECTIONS[parts[0]], name)))
    elif parts[0] in ("task", "model"):
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{key} must be a finite number, got {value!r}")
        section.options[name] = value
    else:
        allowed = sorted(n for n in names)
        raise UsageError(f"unknown config key {key!r}; allowed in [{parts[0]}]: {', '.join(allowed)}")


def get_key(config: RunConfig, key: str):
    """The value of a dotted key as `set_key` names it: ``out``, ``train.lr``, ``model.cell``, or an option
    the config sets (``model.chrono_input`` or ``model.options.chrono_input``). A key that names nothing is
    a UsageError saying which part is unknown and what is allowed there."""
    key = _current_name(key)
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in ("out", "name"):
        return getattr(config, parts[0])
    if parts[0] not in SECTIONS:
        raise UsageError(f"{parts[0]!r} is not one of {[*SECTIONS, 'out', 'name']}")
    section = getattr(config, parts[0])
    names = [f.name for f in dataclasses.fields(section) if f.name != "options"]
    if len(parts) == 1:
        raise UsageError(f"{key!r} is a section, not a key; its keys: {names}")
    if len(parts) == 3 and parts[1] == "options":
        parts = [parts[0], parts[2]]
    name = ".".join(parts[1:])
    if name in names:
        return getattr(section, name)
    if name in getattr(section, "options", {}):
        return section.options[name]
    raise UsageError(f"{name!r} is not one of {names} nor an option this config sets")


def apply_overrides(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``key=value`` strings (the CLI's ``--set``); a renamed key and its new name may not both be set."""
    keys = []
    for item in assignments:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        keys.append(key.strip())
        set_key(config, key.strip(), parse_value(text.strip()))
    for old, new in RENAMED.items():
        if old in keys and new in keys:
            raise UsageError(f"--set {old} and --set {new} are the same setting; give only {new}")
    return config


def _check_renamed_keys(section: str, table: dict) -> None:
    """A table that holds a renamed key under both names must give them the same value."""
    for old, new in RENAMED.items():
        (old_section, old_name), new_name = old.split("."), new.split(".")[1]
        if old_section == section and old_name in table and new_name in table and table[old_name] != table[new_name]:
            raise UsageError(f"[{section}] gives {old_name} = {table[old_name]!r} and {new_name} = "
                             f"{table[new_name]!r}; {old_name} is the deprecated name of {new_name}: "
                             f"keep only {new_name}")


def from_dict(d: dict) -> RunConfig:
    """Build a RunConfig from nested dicts (e.g. a parsed TOML file); every key is checked."""
    config = RunConfig()
    for key, value in d.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise UsageError(f"config section [{key}] must be a table, got {value!r}")
            _check_renamed_keys(key, value)
            for sub, v in value.items():
                if sub == "options" and isinstance(v, dict):
                    for opt, ov in v.items():
                        set_key(config, f"{key}.{opt}", ov)
                else:
                    set_key(config, f"{key}.{sub}", v)
        else:
            set_key(config, key, value)
    return config


def load(path: str | Path) -> RunConfig:
    """The RunConfig of a TOML file; a missing, unreadable or invalid file is a UsageError naming it."""
    if not str(path).strip():
        raise UsageError("config file '' names no file; give a TOML path")
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise UsageError(f"config file {str(path)!r} {what}")
    try:
        return from_dict(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"config file {str(path)!r} is not valid TOML: {e}") from None


# --- writing TOML (tomllib only reads) ------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def to_toml(config: RunConfig) -> str:
    """TOML text for a config; ``None`` values are left out (TOML has no null)."""
    d = config.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in SECTIONS]
    for section in SECTIONS:
        options = d[section].pop("options", {})
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in d[section].items() if v is not None]
        if options:
            lines += ["", f"[{section}.options]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"
