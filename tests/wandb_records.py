"""Read a W&B offline run file (``run-ID.wandb``) back with W&B's own record definitions.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then LevelDB's log
format (32 KiB blocks; each piece a 7-byte header: CRC-32C, length, type FULL/FIRST/MIDDLE/LAST) holding
serialised ``wandb_internal.Record`` messages, which wandb's protobuf module parses. The wandb package of
this release ships no Python reader of its own (its Go core reads the file when it syncs).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1, "not a W&B transaction log"
    out, pos, pieces = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        piece = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            break
        pieces = piece if kind in (FULL, FIRST) else pieces + piece
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            out.append(record)
    return out


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def history(path: Path) -> list[dict]:
    """Every ``run.log`` call: {key: value}, with its step under ``_step``."""
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            row = _items(r.history.item)
            if r.history.HasField("step"):
                row["_step"] = r.history.step.num
            rows.append(row)
    return rows


def _updates(path: Path, parts: dict) -> dict:
    """The key-value updates of the records whose type is in ``parts`` ({type: its updates}), in order."""
    out = {}
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind in parts:
            out.update(_items(parts[kind](r)))
    return out


def config(path: Path) -> dict:
    """The run's config: set in its run record, updated by config records."""
    return _updates(path, {"run": lambda r: r.run.config.update, "config": lambda r: r.config.update})


def summary(path: Path) -> dict:
    return _updates(path, {"summary": lambda r: r.summary.update})


def run(path: Path):
    """The run record: its id, display name and group."""
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")
