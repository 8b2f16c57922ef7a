"""Deprecated alias of `longrnn.methods.regularizers`, where this module moved in 0.2.0; the alias goes in 0.3.0."""

from longrnn._deprecated import alias

alias(__name__, "longrnn.methods.regularizers")
