"""Import paths of modules that moved in 0.2.0, kept working until 0.3.0.

``import longrnn.config`` (or ``from longrnn.gates import GATES``) finds the module at its new place,
warns once with a DeprecationWarning naming it, and gives the very module there, so every name,
private ones included, is the same object. A finder on ``sys.meta_path`` (`install`, called by
``longrnn/__init__.py``) does this for every path in `MOVED`, so the old names need no files of their
own. Import paths are for programmers, so they warn the way Python libraries do (DeprecationWarning,
shown by pytest and ``python -W default``); renamed flags and config keys, which end users type, warn
with `longrnn.errors.deprecated` instead.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

REMOVED_IN = "0.3.0"

MOVED = {
    "longrnn.gates": "longrnn.functional.gates",
    "longrnn.convexp": "longrnn.functional.convexp",
    "longrnn.lattice": "longrnn.functional.lattice",
    "longrnn.warmup": "longrnn.methods.warmup",
    "longrnn.regularizers": "longrnn.methods.regularizers",
    "longrnn.diagnostics": "longrnn.methods.diagnostics",
    "longrnn.config": "longrnn.runs.config",
    "longrnn.sweep": "longrnn.experiment.sweep",
    "longrnn.report": "longrnn.reporting.report",
    "longrnn.results": "longrnn.reporting.results_page",
    "longrnn.leaderboard": "longrnn.reporting.leaderboard",
    "longrnn.reconstruction_page": "longrnn.reporting.reconstruction_page",
    "longrnn.recall": "longrnn.reporting.recall_plot",
    "longrnn.vaa_plot": "longrnn.reporting.vaa_plot",
    "longrnn.html": "longrnn.reporting.html",
    "longrnn.formatting": "longrnn.reporting.formatting",
    "longrnn.colours": "longrnn.reporting.colours",
    "longrnn.bench_memory": "longrnn.bench.memory",
    "longrnn.bench_convexp": "longrnn.bench.convexp",
    "longrnn.cells.gate_init": "longrnn.cells.init",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old path of a moved module and loads it as the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} is deprecated; import {new} instead (the old path goes in {REMOVED_IN})",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the module at the new path is already executed


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
