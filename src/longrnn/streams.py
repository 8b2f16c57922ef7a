"""Random streams: every generator a run draws from, derived from its seed so that no two can coincide.

    stream(seed, "train", rank)     # the training batches of process ``rank`` (0 in a one-process run)
    stream(seed, "warmup")          # the warm-up's input sequences
    stream(seed, "vaa")             # the constant inputs of the VAA measurement
    stream(seed, "memup")           # MemUP's random repeats of target steps
    stream(seed, "detector")        # MemUP's local detector: its (sequence, step) samples
    stream(split_seed, "split")     # the permutation that splits a user's sequences (tasks/sequences.py)
    fixed_set("validation")         # the fixed validation set of every task, the same for every run
    fixed_set("test")               # the fixed test set, read once per run

A stream's key is ``numpy.random.SeedSequence(seed, spawn_key=(purpose, *index))``: seeds, purposes and
indices that differ give independent keys (SeedSequence hashes them all together; NumPy's guide
"Parallel random number generation"). torch's CPU generator (mt19937) takes only the low 32 bits of
its seed (``manual_seed(5)`` and ``manual_seed(5 + 2**32)`` draw the same numbers), so a key becomes a
32-bit seed, and the seeds of the fixed sets are reserved: a word that lands on one is replaced by the
key's next word. So no seed, rank or purpose draws a run's batches from the validation or test set's
stream (tested over seeds, ranks and tasks); two different keys share a 32-bit seed with probability
2^-32, where the old offsets (below) made it certain for some seeds.

The fixed sets keep the seeds they have always had (1,000,003 and 2,000,003), so validation and test
scores stay comparable with every earlier run. Model initialisation and dropout use torch's global
generator, seeded with the run's seed (`torch.manual_seed`), as before.

Before 0.2.0 the training batches of process r came from ``seed + r * 1,000,003``: process 1 of a
two-process ``--ddp`` run with seed 0, or a one-process run with seed 1,000,003, trained on the
validation set (and seed 2,000,003 on the test set). None of the runs under results/ was affected
(all ran in one process with seeds 0, 1 or 2).
"""

from __future__ import annotations

import numpy as np
import torch

VALIDATION_SEED = 1_000_003
TEST_SEED = 2_000_003
FIXED_SETS = {"validation": VALIDATION_SEED, "test": TEST_SEED}
PURPOSES = ("train", "warmup", "vaa", "memup", "detector", "split")  # append only: an index is a key
_RESERVED = frozenset(FIXED_SETS.values())
_WORDS = 8  # 32-bit words drawn from a key; the first one that is not reserved is the seed


def stream_seed(seed: int, purpose: str, *index: int) -> int:
    """The torch seed (32 bits, never a fixed set's) of the stream ``(seed, purpose, *index)``.

    Raises ValueError for an unknown purpose or a negative seed or index."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; allowed: {', '.join(PURPOSES)}")
    if seed < 0 or any(i < 0 for i in index):
        raise ValueError(f"stream seeds and indices must be non-negative, got {seed!r} and {index!r}")
    key = np.random.SeedSequence(seed, spawn_key=(PURPOSES.index(purpose), *index))
    for word in key.generate_state(_WORDS, np.uint32):
        if int(word) not in _RESERVED:
            return int(word)
    raise AssertionError("unreachable: eight reserved words in a row")


def stream(seed: int, purpose: str, *index: int) -> torch.Generator:
    """A CPU ``torch.Generator`` for one purpose of a run with this ``seed`` (e.g. ``"train", rank``)."""
    return torch.Generator().manual_seed(stream_seed(seed, purpose, *index))


def fixed_set(split: str) -> torch.Generator:
    """The generator of a task's fixed ``"validation"`` or ``"test"`` set (independent of any run)."""
    if split not in FIXED_SETS:
        raise ValueError(f"unknown fixed set {split!r}; allowed: {', '.join(FIXED_SETS)}")
    return torch.Generator().manual_seed(FIXED_SETS[split])
