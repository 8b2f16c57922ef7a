"""The task registry: `register` (a class decorator), `make_task`, `task_class`, `task_options` and
`available`.

Unknown names and unknown options give a `UsageError` naming the bad value and the allowed ones.
"""

from __future__ import annotations

import inspect

from longrnn.errors import UsageError, unknown
from longrnn.tasks.base import Task

_REGISTRY: dict[str, tuple[type, str]] = {}


def register(name: str, description: str):
    """Class decorator: make a Task subclass available under ``name`` with a one-line description."""

    def add(cls):
        cls.name = name
        _REGISTRY[name] = (cls, description)
        return cls

    return add


def available() -> dict[str, str]:
    """Registered task names, each with its one-line description."""
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def task_class(name: str) -> type:
    """The Task subclass registered as ``name``."""
    if name not in _REGISTRY:
        raise unknown("task", name, _REGISTRY)
    return _REGISTRY[name][0]


def task_options(name: str) -> list[str]:
    """The option names the task ``name`` accepts."""
    params = inspect.signature(task_class(name).__init__).parameters
    return [p for p in params if p != "self"]


def check_task_options(name: str, options) -> None:
    """A UsageError for the first of ``options`` (names) that the task ``name`` does not take."""
    allowed = task_options(name)
    for key in options:
        if key not in allowed:
            raise UsageError(f"task {name!r} has no option {key!r}; allowed: {', '.join(allowed)}")


def make_task(name: str, **options) -> Task:
    """Build the task registered as ``name``; options are checked against its constructor."""
    check_task_options(name, options)
    return task_class(name)(**options)
