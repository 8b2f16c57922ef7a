"""Periodic lattice shapes as users write them: ``"32x32"`` (2-D), ``"64"`` or ``64`` (1-D), ``[8, 8]``.

Used by the convolutional cells and the spatial tasks; a bad value is a `UsageError`.
"""

from __future__ import annotations

from longrnn.errors import UsageError

MAX_DIMS = 2


def parse_lattice(value) -> tuple[int, ...]:
    """``"32x32"`` -> (32, 32); ``"64"``, ``64`` -> (64,); ``[8, 8]`` -> (8, 8). 1-D or 2-D, sizes >= 1."""
    allowed = "a size like 64, or HxW like 32x32 (1-D or 2-D, positive sizes)"
    if isinstance(value, bool):
        raise UsageError(f"bad lattice {value!r}; expected {allowed}")
    if isinstance(value, int):
        parts = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        try:
            parts = [int(p) for p in value.lower().split("x")]
        except ValueError:
            raise UsageError(f"bad lattice {value!r}; expected {allowed}") from None
    else:
        raise UsageError(f"bad lattice {value!r}; expected {allowed}")
    if not 1 <= len(parts) <= MAX_DIMS or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in parts):
        raise UsageError(f"bad lattice {value!r}; expected {allowed}")
    return tuple(parts)


def lattice_text(lattice: tuple[int, ...]) -> str:
    """(32, 32) -> ``"32x32"``."""
    return "x".join(map(str, lattice))


def sites(lattice: tuple[int, ...]) -> int:
    """Number of lattice sites."""
    n = 1
    for size in lattice:
        n *= size
    return n
