"""User-facing errors and deprecations.

`UsageError` is raised for bad input a person can fix (an unknown name, a negative length, a config key
that does not exist, a missing optional extra). Its message names the bad value and what is allowed.
The CLI prints it as one line and exits with status 2.

`deprecated(old, new)` warns (`LongrnnDeprecationWarning`, a FutureWarning, so users see it by default)
that a name still works but has a new one; the CLI prints it as one line.
"""

import re
import warnings

REMOVED_IN = "0.3.0"  # the release that drops the names deprecated in this one


class LongrnnDeprecationWarning(FutureWarning):
    """A flag, config key or import path that still works in this release but has a new name."""


def deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (once per message and calling place);
    ``stacklevel`` as `warnings.warn` takes it, counted from here (3: the caller's caller)."""
    warnings.warn(f"{old} is deprecated; use {new} (the old name goes in {REMOVED_IN})",
                  LongrnnDeprecationWarning, stacklevel=stacklevel)


class UsageError(ValueError):
    """Bad input from a user: the message names the bad value and what is allowed."""


def unknown(kind: str, name: object, allowed) -> UsageError:
    """An error for an unknown name, e.g. ``unknown("cell", "lstn", ["gru", "lstm"])``."""
    return UsageError(f"unknown {kind} {name!r}; allowed: {', '.join(sorted(map(str, allowed)))}")


def refused_memory(error: BaseException) -> str | None:
    """The size a refused allocation asked for, as text (torch's bytes as "149 GiB", numpy's "6.55 TiB");
    "" for a MemoryError that names none; None when ``error`` is not a refused allocation."""
    asked = re.search(r"tried to allocate (\d+) bytes|Unable to allocate ([\d.]+ \w+)", str(error))
    if asked:
        return f"{int(asked.group(1)) / 2**30:.3g} GiB" if asked.group(1) else asked.group(2)
    return "" if isinstance(error, MemoryError) else None


def check_choice(kind: str, value, allowed):
    """Return ``value`` if it is one of ``allowed``, else raise the `unknown` UsageError."""
    if value not in allowed:
        raise unknown(kind, value, allowed)
    return value


def require_extra(module: str, extra: str):
    """Import an optional dependency, or raise a UsageError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UsageError(
            f"{module} is not installed; install the extra: pip install 'longrnn[{extra}]'"
        ) from e


def check_positive(name: str, value, allow_zero: bool = False):
    """Return ``value`` if it is a positive int (or >= 0 with ``allow_zero``), else raise UsageError."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = "a non-negative" if allow_zero else "a positive"
        raise UsageError(f"{name} must be {what} integer, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is a bool, else raise UsageError."""
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be true or false, got {value!r}")
    return value
