"""Runs: a run's configuration (`config`: RunConfig, TOML in and out, ``--set``) and its directory
(`directory`: config.toml, metrics.jsonl, summary.json, model.pt, checkpoint.pt, written atomically).

The directory's functions are importable from here: ``from longrnn import runs; runs.read_summary(d)``.
"""

from longrnn.runs.directory import (
    CHECKPOINT,
    CONFIG,
    LOCK,
    METRICS,
    MODEL,
    SUMMARY,
    WARMUP,
    DamagedFile,
    RunLock,
    append_metrics,
    find_runs,
    has_trained,
    is_run,
    load_torch,
    make_folder,
    prepare,
    read_config,
    read_json,
    read_metrics,
    read_summary,
    save_torch,
    truncate_metrics,
    write_json,
    write_text,
)

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "LOCK",
    "METRICS",
    "MODEL",
    "SUMMARY",
    "WARMUP",
    "DamagedFile",
    "RunLock",
    "append_metrics",
    "find_runs",
    "has_trained",
    "is_run",
    "load_torch",
    "make_folder",
    "prepare",
    "read_config",
    "read_json",
    "read_metrics",
    "read_summary",
    "save_torch",
    "truncate_metrics",
    "write_json",
    "write_text",
]
