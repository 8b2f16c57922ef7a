"""The cell registry: `register` (a class decorator), `make_cell`, `cell_class` and `available`.

Unknown names and unknown options give a `UsageError` naming the bad value and the allowed ones. A name
``torchrecurrent:NAME`` is one of the torchrecurrent package's cells (`longrnn.cells.external`).
"""

from __future__ import annotations

import inspect

from longrnn.cells.base import Cell
from longrnn.errors import UsageError, check_positive, unknown

_REGISTRY: dict[str, tuple[type, str]] = {}


def register(name: str, description: str):
    """Class decorator: make a Cell subclass available under ``name`` with a one-line description."""

    def add(cls):
        _REGISTRY[name] = (cls, description)
        return cls

    return add


def available() -> dict[str, str]:
    """Registered cell names, each with its one-line description."""
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def cell_class(name: str) -> type:
    """The class registered as ``name``, or the adapter of the torchrecurrent cell it names."""
    from longrnn.cells import external  # imported here: it imports this module's neighbours

    if external.is_external(name):
        return external.cell_class(name)
    if name not in _REGISTRY:
        raise unknown("cell", name, [*_REGISTRY, external.PREFIX + "NAME"])
    return _REGISTRY[name][0]


def cell_options(name: str) -> list[str]:
    """The option names the cell ``name`` accepts (its constructor's parameters beyond the two sizes)."""
    cls = cell_class(name)
    if hasattr(cls, "option_names"):
        return cls.option_names()
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p not in ("self", "input_size", "hidden_size")]


def check_cell_options(name: str, options) -> None:
    """A UsageError for the first of ``options`` (names) that the cell ``name`` does not take."""
    allowed = cell_options(name)
    for key in options:
        if key not in allowed:
            raise UsageError(f"cell {name!r} has no option {key!r}; allowed: {', '.join(allowed) or '(none)'}")


def make_cell(name: str, input_size: int, hidden_size: int, **options) -> Cell:
    """Build the cell registered as ``name``; options are checked against its constructor."""
    cls = cell_class(name)
    check_positive("input_size", input_size)
    check_positive("hidden_size", hidden_size)
    check_cell_options(name, options)
    return cls(input_size, hidden_size, **options)
