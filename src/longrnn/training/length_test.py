"""Length generalisation at the end of training: the best model tested at other lengths.

``train.test_lengths = "1000,10000,100000"`` (``--test-lengths``) scores the kept weights, after the
usual test, on fixed test sets of ``train.test_lengths_size`` sequences (default 100) of the task at
each of those length settings (``seq_len``; copy: the delay), and writes the scores to summary.json
under ``test_lengths``: ``{"1000": {"test": {...metrics}, "baseline": {...}, "seconds": ...}, ...}``. Each set is read
once; long ones are read chunk by chunk (training/evaluate.py), so a million steps fit in memory.
``train.test_lengths_options = "variable_delay=false"`` changes task options for those tests: a copy
model trained on delays drawn up to T is then tested at a fixed delay of each length.
"""

from __future__ import annotations

import copy
import time

from longrnn.errors import UsageError
from longrnn.runs.config import parse_value
from longrnn.tasks import check_task_options, task_options
from longrnn.training.build import build_task
from longrnn.training.evaluate import evaluate


def parse_lengths(text: str) -> list[int]:
    """``"1000,10000"`` -> [1000, 10000]; "" -> []. Anything but positive whole numbers is a UsageError."""
    lengths = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) < 1:
            raise UsageError(f"train.test_lengths takes positive whole numbers separated by commas, got {part!r} "
                             f"in {text!r}")
        lengths.append(int(part))
    return lengths


def parse_options(text: str) -> dict:
    """``"variable_delay=false,recall=3"`` -> {"variable_delay": False, "recall": 3}; "" -> {}."""
    options = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UsageError(f"train.test_lengths_options takes KEY=VALUE pairs separated by commas, got {part!r}")
        key, value = part.split("=", 1)
        options[key.strip()] = parse_value(value.strip())
    return options


def check_test_lengths(config) -> None:
    """A UsageError for bad ``test_lengths`` or ``test_lengths_options``, or for a task without a length."""
    options = task_options(config.task.name)
    if parse_lengths(config.train.test_lengths) and not {"seq_len", "test_size"} <= set(options):
        raise UsageError(f"train.test_lengths: task {config.task.name!r} has no length or test-set size to "
                         "change")
    changed = parse_options(config.train.test_lengths_options)
    if changed and not config.train.test_lengths:
        raise UsageError("train.test_lengths_options changes the task for the tests of train.test_lengths; give "
                         "those lengths too")
    check_task_options(config.task.name, changed)
    if changed:  # a bad value fails now, not after training
        build_task(_tested(config, int(config.task.seq_len or 1)))


def _tested(config, length: int):
    """The config of the test at ``length``: that seq_len, the changed options, sets of test_lengths_size."""
    other = copy.deepcopy(config)
    other.task.seq_len = length
    other.task.options.update(parse_options(config.train.test_lengths_options),
                              validation_size=config.train.test_lengths_size, test_size=config.train.test_lengths_size)
    return other


def test_at_lengths(config, model, device="cpu") -> dict:
    """``{str(length): {"test": metrics, "baseline": memoryless metrics, "seconds": s}}`` of ``model`` (the
    kept weights); ``seconds``: the wall time of that test."""
    t, out = config.train, {}
    for length in parse_lengths(t.test_lengths):
        started = time.perf_counter()
        task = build_task(_tested(config, length))
        out[str(length)] = {"test": evaluate(model, task, "test", t.eval_batch_size, device),
                            "baseline": task.baseline("test"), "seconds": time.perf_counter() - started}
    return out
