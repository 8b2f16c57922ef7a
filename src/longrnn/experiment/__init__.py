"""Grids of runs: an experiment file (TOML) crossed into runs and run locally or on Ray (`sweep`)."""
