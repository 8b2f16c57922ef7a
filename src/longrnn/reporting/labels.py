"""Labels that tell configurations apart by what differs between them.

A report shows several configurations side by side; a label made from a fixed list of settings (cell,
width, trainer, learning rate) gives two runs that differ only in their optimizer the same name. Here a
label is made from the settings that actually differ within the group shown together (`differing`: every
key of the flattened configs but the seed, where the run is written, its thread count and its trackers).
A setting that most of the group shares (two thirds or more) is named only by the configurations that
depart from it, and said once for all ("unless named: optimizer=adam"), so that each legend entry says
what sets it apart (`naming`). Two different configurations never get the same label: of two values of a
key at most one is the shared one, and values are written so that different values read differently
(`value_text`). `distinct` appends the names to a base label where base labels collide (the report's
tables); `legend` gives them alone, with `common` naming what every member shares (a panel's legend).
"""

from __future__ import annotations

import collections

from longrnn.reporting.leaderboard import layer_and_training_settings
from longrnn.runs.config import RunConfig
from longrnn.runs.trackers import hyperparameters

NOT_A_DIFFERENCE = {"out", "name", "train.seed", "train.threads", "train.log"}


def label(config) -> str:
    """``lstm h32x1 [gate=fast] (bptt, lr 0.001, warm-up)``: a configuration as a report names it by default
    (cell, width x layers, cell and task options, trainer, learning rate, method settings)."""
    m = config.model
    named = {k: v for k, v in (("gate", m.gate), ("forget_init", m.forget_init), ("engine", m.engine)) if v}
    opts = ", ".join(f"{k}={value_text(v)}" for k, v in sorted({**config.task.options, **named, **m.options}.items()))
    extras = "".join(f", {setting}" for setting in layer_and_training_settings(config))
    return (f"{m.cell} h{m.hidden_size}x{m.layers}{f' [{opts}]' if opts else ''} "
            f"({config.train.trainer}, lr {value_text(config.train.lr)}{extras})")


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


def value_text(v) -> str:
    """A setting's value as a label writes it: a float in its shortest form that reads back as the same
    number, with a decimal point (``0.001``, ``1.0``, ``0.00123456701``), None as ``default``."""
    if v is None:
        return "default"
    if isinstance(v, float):
        text = f"{v:g}"
        if float(text) != v:
            text = repr(v)
        return text if any(c in text for c in ".ein") else f"{text}.0"
    return str(v)


def describe(config, keys: list[str]) -> str:
    """``"optimizer=sgd, lr=0.01"``: ``config``'s values of ``keys``."""
    flat, short = _settings(config), _short(keys)
    return ", ".join(f"{short[k]}={value_text(flat.get(k))}" for k in keys)


SHARED = 2 / 3  # a value held by this share of a group is said once for all, not in every label


def naming(configs) -> tuple[list[list[str]], dict]:
    """For each config, the keys its label names; and {key: value} of the shared values said once instead."""
    keys, flats = differing(configs), [_settings(c) for c in configs]
    shared = {}
    for k in keys:
        counts = collections.Counter(repr(f.get(k)) for f in flats)
        value, count = counts.most_common(1)[0]
        if count >= SHARED * len(flats) and count > len(flats) / 2:
            shared[k] = next(f.get(k) for f in flats if repr(f.get(k)) == value)
    named = [[k for k in keys if k not in shared or repr(f.get(k)) != repr(shared[k])] for f in flats]
    return named, shared


def distinct(configs, base) -> list[str]:
    """``base(config)`` for each config; where two configs share a base label, each gets appended the settings
    that set it apart within that group (`naming`): ``lstm h32x1 (bptt, lr 0.001), optimizer=sgd``."""
    labels = [base(c) for c in configs]
    groups = collections.defaultdict(list)  # base label -> indices of its configs
    for i, text in enumerate(labels):
        groups[text].append(i)
    out = list(labels)
    for members in groups.values():
        if len(members) > 1:
            named, _ = naming([configs[i] for i in members])
            for i, keys in zip(members, named):
                out[i] = f"{labels[i]}, {describe(configs[i], keys)}" if keys else labels[i]
    return out


NOTHING_NAMED = "every setting as listed above"  # a legend entry of the configuration that departs from none


def legend(configs, base) -> tuple[list[str], str]:
    """Legend entries for configurations drawn together, and the text of what they share: with one config,
    its ``base`` label and ""; with several, the settings that set each apart (`naming`), and the settings
    they share (`common`) followed by the values said once ("unless named: ...")."""
    if len(configs) < 2:
        return [base(c) for c in configs], ""
    named, said_once = naming(configs)
    entries = [describe(c, keys) or NOTHING_NAMED for c, keys in zip(configs, named)]
    text = common(configs[0], differing(configs))
    if said_once:
        short = _short(list(said_once))
        text += "; unless named: " + ", ".join(f"{short[k]}={value_text(v)}" for k, v in said_once.items())
    return entries, text


HEAD = {"model.cell": "{}", "model.hidden_size": "h{}", "model.layers": "layers={}", "train.trainer": "{}",
        "train.optimizer": "{}", "train.lr": "lr {}", "train.steps": "{} steps"}
PANEL = ("task.name", "task.seq_len")  # a panel's title names them


def common(config, differ: list[str]) -> str:
    """What every configuration shares, from ``config`` (any one of them) less the keys in ``differ``: cell,
    width and layers, trainer, optimizer, learning rate and steps where they are shared, then every shared
    setting that is not the default."""
    flat, defaults = _settings(config), _settings(RunConfig())
    head = []
    for k, form in HEAD.items():
        if k == "model.layers" and "model.hidden_size" not in differ and k not in differ:
            head[-1] += f"x{value_text(flat[k])}"  # h32x2, as in a label (HEAD names the width just before)
        elif k not in differ:
            head.append(form.format(value_text(flat[k])))
    rest = [k for k in flat if k not in differ and k not in HEAD and k not in PANEL and flat[k] != defaults.get(k)]
    return ", ".join(head + ([describe(config, rest)] if rest else []))
