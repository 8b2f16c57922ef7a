"""Cells of the ``torchrecurrent`` package (F. Martinuzzi, MIT licence; the ``torchrecurrent`` extra) under
longrnn's `Cell` protocol, so every task, trainer and method that takes a cell takes them too:

    longrnn train --task copy --cell torchrecurrent:cornn --set model.dt=0.05

The name after ``torchrecurrent:`` is the package's cell class in lower case without ``Cell``
(``coRNNCell`` -> ``cornn``, ``LEMCell`` -> ``lem``, ``UnICORNNCell`` -> ``unicornn``); ``longrnn list
cells`` names them all when the extra is installed. The cell's own constructor options (``dt``,
``gamma``, ``kernel_init="orthogonal"``, ...) are the cell's options (``--set model.NAME=VALUE``); its
equations, initialisation and defaults are the package's, documented on its classes (the source of each
cell is the paper its docstring names).

A torchrecurrent cell maps (x_t, state) -> new state; the adapter:

* keeps the package's state: a (batch, H) tensor for single-state cells, a pair of tensors for
  double-state ones (``(h, c)``, ``(y, z)``, ...), zeros at the start (shapes read from the cell once);
* outputs the first tensor of the state (h, or y for the oscillators), or the separate output of the
  cells that return one (MCLSTM, TLSTM); ``output_size`` is that tensor's width;
* does not hoist the input projection out of the time loop (``project_input`` is the identity: the
  package's step computes it), so a step costs one more matrix product than a native cell.

Errors: an unknown name, an option the cell does not take, or a size the cell refuses (the
IntersectionRNN needs input_size == hidden_size) is a `UsageError`; without the extra,
a one-line `UsageError` naming it.
"""

from __future__ import annotations

import functools
import inspect

import torch

from longrnn.cells.base import Cell, State, zero_state
from longrnn.errors import UsageError, require_extra, unknown

PREFIX = "torchrecurrent:"
EXTRA = "torchrecurrent"
NOT_OPTIONS = ("self", "input_size", "hidden_size", "device", "dtype")


def is_external(name: str) -> bool:
    """Whether ``name`` names a torchrecurrent cell (``torchrecurrent:NAME``)."""
    return isinstance(name, str) and name.startswith(PREFIX)


@functools.cache
def _package_cells() -> dict[str, type]:
    """{short name: class} for every cell class the installed torchrecurrent exports."""
    package = require_extra("torchrecurrent", EXTRA)
    base = require_extra("torchrecurrent.base", EXTRA)
    classes = {}
    for attr in dir(package):
        cls = getattr(package, attr)
        if isinstance(cls, type) and issubclass(cls, base.RecurrentCellBase) and attr.endswith("Cell"):
            classes[attr[: -len("Cell")].lower()] = cls
    return classes


def available() -> dict[str, str]:
    """{``torchrecurrent:NAME``: the first line of the class's docstring}; empty without the extra."""
    try:
        classes = _package_cells()
    except UsageError:
        return {}
    return {PREFIX + short: _first_line(cls.__doc__) for short, cls in sorted(classes.items())}


def _first_line(doc: str | None) -> str:
    lines = [line.strip() for line in (doc or "").strip().splitlines()]
    return f"torchrecurrent: {lines[0]}" if lines and lines[0] else "torchrecurrent cell"


@functools.cache
def cell_class(name: str) -> type:
    """The `Cell` subclass wrapping torchrecurrent's cell ``name`` (``torchrecurrent:NAME``)."""
    short = name[len(PREFIX):]
    classes = _package_cells()
    if short not in classes:
        raise unknown("cell", name, [PREFIX + s for s in sorted(classes)])
    inner = classes[short]
    return type(f"TorchRecurrent{inner.__name__}", (TorchRecurrentCell,), {"inner_class": inner, "name": name})


class TorchRecurrentCell(Cell):
    """A torchrecurrent cell as a longrnn `Cell` (see the module docstring); ``self.inner`` is the package's
    module, holding every parameter. Subclasses made by `cell_class` set ``inner_class`` and ``name``."""

    inner_class: type
    name: str

    @classmethod
    def option_names(cls) -> list[str]:
        """The wrapped class's constructor options (device and dtype are the module's, set with ``.to``)."""
        params = inspect.signature(cls.inner_class.__init__).parameters
        return [p for p, spec in params.items() if p not in NOT_OPTIONS and spec.kind is spec.POSITIONAL_OR_KEYWORD]

    def __init__(self, input_size: int, hidden_size: int, **options):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self._check_option_types(options)
        try:
            self.inner = self.inner_class(input_size, hidden_size, **options)
            self.decoupled = "Decoupled" in "".join(b.__name__ for b in type(self.inner).__mro__)
            like = next(self.inner.parameters())  # the probe on the parameters' device (meta in a sweep's check)
            with torch.no_grad():
                output, state = self._call(torch.zeros(1, input_size, device=like.device, dtype=like.dtype), None)
        except (ValueError, TypeError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and torch.get_default_device().type == "meta":
                raise  # a skeleton on the meta device (a sweep's check) that this cell's step cannot run on
            raise UsageError(f"cell {self.name!r} with input_size={input_size}, hidden_size={hidden_size}, "
                             f"options {options}: {e}") from None
        self.state_sizes = tuple(s.shape[-1] for s in state) if isinstance(state, tuple) else state.shape[-1]
        self.output_size = output.shape[-1]

    def _check_option_types(self, options: dict) -> None:
        """Each option of the type of its default: a bool for a bool (the package reads any text as true), a
        number for a number, an initialiser's name for an initialiser (the package quietly replaces
        anything else by its default)."""
        params = inspect.signature(self.inner_class.__init__).parameters
        for key, value in options.items():
            if key not in params:
                continue  # the constructor names it (a TypeError, made a UsageError below)
            default = params[key].default
            if isinstance(default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(default, (int, float)):
                ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
            elif key.endswith("_init"):
                ok, kind = isinstance(value, str), "an initialiser's name (e.g. \"orthogonal\", \"xavier_uniform\")"
            else:
                ok, kind = True, ""
            if not ok:
                raise UsageError(f"cell {self.name!r}: option {key} must be {kind}, got {value!r}")

    def _call(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        result = self.inner(x, state)
        if self.decoupled:
            output, new = result
        else:
            new = result
            output = new[0] if isinstance(new, tuple) else new
        return output, tuple(new) if isinstance(new, list | tuple) else new

    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        like = next(self.parameters())
        if isinstance(self.state_sizes, tuple):
            return tuple(zero_state(batch_size, n, like, device, dtype) for n in self.state_sizes)
        return zero_state(batch_size, self.state_sizes, like, device, dtype)

    def step(self, x_proj: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self._call(x_proj, state)

    def extra_repr(self) -> str:
        return f"{self.name!r}, input_size={self.input_size}, hidden_size={self.hidden_size}"
