"""Labels that tell configurations apart by what differs between them.

A report shows several configurations side by side; a label made from a fixed list of settings (cell,
width, trainer, learning rate) gives two runs that differ only in their optimizer the same name. Here a
label is made from the settings that actually differ within the group shown together: `differing`
finds them in the flattened configs (every key but the seed, where the run is written, its thread count
and its trackers), `distinct` adds them to a base label where base labels collide, and `legend` gives
the differing settings alone, with `common` naming what every member shares.
"""

from __future__ import annotations

from longrnn.reporting.leaderboard import layer_and_training_settings
from longrnn.runs.trackers import hyperparameters

NOT_A_DIFFERENCE = {"out", "name", "train.seed", "train.threads", "train.log"}


def label(config) -> str:
    """``lstm h32x1,gate=fast (bptt, lr 0.001, warm-up)``: a configuration as a report names it by default
    (cell, width x layers, cell and task options, trainer, learning rate, method settings)."""
    m = config.model
    named = {k: v for k, v in (("gate", m.gate), ("forget_init", m.forget_init), ("engine", m.engine)) if v}
    opts = "".join(f",{k}={v}" for k, v in sorted({**config.task.options, **named, **m.options}.items()))
    extras = "".join(f", {setting}" for setting in layer_and_training_settings(config))
    return f"{m.cell} h{m.hidden_size}x{m.layers}{opts} ({config.train.trainer}, lr {config.train.lr:g}{extras})"


def _settings(config) -> dict:
    return {k: v for k, v in hyperparameters(config).items() if k not in NOT_A_DIFFERENCE}


def differing(configs) -> list[str]:
    """The dotted keys whose values are not the same in every config of ``configs`` (in config order)."""
    flats = [_settings(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]


def _short(keys: list[str]) -> dict[str, str]:
    """Each key by its last part (``train.optimizer`` -> ``optimizer``) unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else "default" if v is None else str(v)


def describe(config, keys: list[str]) -> str:
    """``"optimizer=sgd, lr=0.01"``: ``config``'s values of ``keys``."""
    flat, short = _settings(config), _short(keys)
    return ", ".join(f"{short[k]}={_value(flat.get(k))}" for k in keys)


def distinct(configs, base) -> list[str]:
    """``base(config)`` for each config; where two configs share a base label, each gets the settings in
    which the configs under that label differ appended (``lstm h32x1 (bptt, lr 0.001), optimizer=sgd``)."""
    labels = [base(c) for c in configs]
    out = []
    for config, label in zip(configs, labels):
        same = [c for c, other in zip(configs, labels) if other == label]
        keys = differing(same)
        out.append(f"{label}, {describe(config, keys)}" if keys else label)
    return out


def legend(configs, base) -> tuple[list[str], str]:
    """Legend entries for configurations drawn together, and the text of what they share: with one config,
    its ``base`` label and ""; with several, each config's differing settings, and the settings they all
    share (`common`)."""
    if len(configs) < 2:
        return [base(c) for c in configs], ""
    keys = differing(configs)
    return [describe(c, keys) for c in configs], common(configs[0], keys)


HEAD = {"model.cell": "{}", "model.hidden_size": "h{}", "model.layers": "x{}", "train.trainer": "{}",
        "train.optimizer": "{}", "train.lr": "lr {}", "train.steps": "{} steps"}
PANEL = ("task.name", "task.seq_len")  # a panel's title names them


def common(config, differ: list[str]) -> str:
    """What every configuration shares, from ``config`` (any one of them) less the keys in ``differ``: cell,
    width and layers, trainer, optimizer, learning rate and steps where they are shared, then every shared
    setting that is not the default."""
    from longrnn.runs.config import RunConfig

    flat, defaults = _settings(config), _settings(RunConfig())
    head = [HEAD[k].format(_value(flat[k])) for k in HEAD if k not in differ]
    rest = [k for k in flat if k not in differ and k not in HEAD and k not in PANEL and flat[k] != defaults.get(k)]
    return ", ".join(head + ([describe(config, rest)] if rest else [])).replace(", x", "x")
