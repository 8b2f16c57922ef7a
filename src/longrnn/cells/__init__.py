"""Recurrent cells: one `Cell` protocol (`base.py`), one file per family, and a registry.

    make_cell(name, input_size, hidden_size, **options)     # a Cell, options checked
    available()                                             # {name: one-line description}

Each family file registers its names with `register` (`registry.py`); importing this package imports
them all.
"""

# Importing the family modules registers their cells.
from longrnn.cells import bistable, conv_unitary, gated, mgu, orthogonal, plrnn, simple  # noqa: F401
from longrnn.cells.base import Cell, State, detach_state, map_state, stack_states
from longrnn.cells.registry import available, cell_class, cell_options, check_cell_options, make_cell, register

__all__ = [
    "Cell",
    "State",
    "available",
    "cell_class",
    "cell_options",
    "check_cell_options",
    "detach_state",
    "make_cell",
    "map_state",
    "register",
    "stack_states",
]
