"""Benchmarks, as ratios against a reference measured in the same process: `longrnn bench speed`
(`speed`), `bench memory` (`memory`) and `bench convexp` (`convexp`)."""
