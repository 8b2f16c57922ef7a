"""Old import paths kept for one release: each is a two-line module that calls `alias`."""

import importlib
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Make module ``old`` the very module ``new`` (every name, private ones included, is the same
    object) and warn once, at the import, with a DeprecationWarning naming ``new``."""
    warnings.warn(f"{old} is deprecated; import {new} instead", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
