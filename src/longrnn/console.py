"""What longrnn prints while it works: a progress bar on a terminal, plain lines anywhere else.

`progress(total, desc, ...)` returns a tqdm bar when standard error is a terminal. Piped to a file or
a log (a batch job, ``2> train.log``), carriage-return updates would pile up into megabytes on one
line, so it returns a `LineProgress` instead: the same ``update`` / ``set_postfix`` / ``close`` calls,
and one plain line per ``set_postfix`` (the trainer calls it once per evaluation) and at the end.

Warnings meant for a user (`notice`) are held while a command checks its input (`hold_notices`) and
printed when its work begins (the first progress record) or ends, so that a command refused for a bad
value prints that one line alone (`drop_notices`), not a deprecation remark before it.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

_held: list[str] | None = None  # notices not yet printed, while held


def notice(text: str) -> None:
    """Print ``longrnn: warning: text`` on standard error, or hold it while notices are held."""
    line = f"longrnn: warning: {text}"
    if _held is None:
        print(line, file=sys.stderr)
    else:
        _held.append(line)


def hold_notices() -> None:
    """Hold notices from now until `release_notices` or `drop_notices`."""
    global _held
    _held = [] if _held is None else _held


def release_notices() -> None:
    """Print the held notices, and print notices at once from now on."""
    global _held
    held, _held = _held or [], None
    for line in held:
        print(line, file=sys.stderr)


def drop_notices() -> None:
    """Forget the held notices (the command was refused: its error is the one line it prints)."""
    global _held
    _held = None


class LineProgress:
    """A progress record for a non-terminal: ``desc: n/total key=value ...`` once per postfix, and at close
    when something happened since."""

    def __init__(self, total: int, desc: str, initial: int = 0, file=None):
        self.total, self.desc, self.n, self.file = total, desc, initial, file or sys.stderr
        self.postfix, self.printed = "", None  # ``printed``: n at the last line

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())
        self._line()

    def _line(self) -> None:
        print(f"{self.desc}: {self.n}/{self.total}{' ' + self.postfix if self.postfix else ''}", file=self.file,
              flush=True)
        self.printed = self.n

    def close(self) -> None:
        if self.printed != self.n:
            self._line()


def progress(total: int, desc: str, initial: int = 0, disable: bool = False):
    """A tqdm bar on a terminal, a `LineProgress` elsewhere; with ``disable`` one that prints nothing.
    Work begins: held notices are printed first."""
    release_notices()
    if not disable and not sys.stderr.isatty():
        return LineProgress(total, desc, initial)
    return tqdm(total=total, initial=initial, disable=disable, desc=desc, dynamic_ncols=True)


def track(iterable, total: int, desc: str, disable: bool = False):
    """Yield from ``iterable`` (``total`` items) with a `progress` record advanced after each item."""
    bar = progress(total, desc, disable=disable)
    try:
        for item in iterable:
            yield item
            bar.update(1)
    finally:
        bar.close()
