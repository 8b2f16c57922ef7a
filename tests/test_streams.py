"""Random streams (longrnn.streams): no seed, rank or purpose reproduces the fixed validation or test set."""

import hashlib

import pytest
import torch

from longrnn.streams import FIXED_SETS, PURPOSES, TEST_SEED, VALIDATION_SEED, fixed_set, stream, stream_seed
from longrnn.tasks import make_task

# seeds a user may well pass: small ones, the fixed sets' own seeds, offsets the old derivation used
SEEDS = [0, 1, 2, 3, 7_919, 999_999, VALIDATION_SEED, TEST_SEED, VALIDATION_SEED - 7_919, 2**31, 2**32 + 1]
RANKS = [0, 1, 2, 3]
TASKS = {  # generated tasks whose sequences are varied enough that chance repeats do not occur
    "adding": {"seq_len": 20},
    "multiplication": {"seq_len": 20},
    "copy": {"seq_len": 10},
    "scattered_copy": {"seq_len": 10},
    "copy_first": {"seq_len": 10},
    "denoising": {"seq_len": 20},
    "spatial_copy": {"seq_len": 3},
}


def sequence_hashes(x: torch.Tensor, y: torch.Tensor) -> set[str]:
    """One hash per sequence of a batch, over its inputs and targets."""
    return {hashlib.sha1(xi.numpy().tobytes() + yi.numpy().tobytes()).hexdigest() for xi, yi in zip(x, y)}


@pytest.fixture(scope="module", params=sorted(TASKS))
def task_and_fixed_hashes(request):
    task = make_task(request.param, **TASKS[request.param])
    fixed = sequence_hashes(*task.validation_set()) | sequence_hashes(*task.test_set())
    assert len(fixed) == task.validation_size + task.test_size  # no repeats within the fixed sets themselves
    return task, fixed


def test_training_batches_never_share_a_sequence_with_the_fixed_sets(task_and_fixed_hashes):
    task, fixed = task_and_fixed_hashes
    for seed in SEEDS:
        for rank in RANKS:
            drawn = sequence_hashes(*task.sample(256, stream(seed, "train", rank)))
            assert not drawn & fixed, (task.name, seed, rank)
        for purpose in ("warmup", "vaa", "memup", "detector"):
            assert not sequence_hashes(*task.sample(64, stream(seed, purpose))) & fixed, (task.name, seed, purpose)


def test_the_old_derivation_fails_the_same_check():
    """Before longrnn.streams, process r drew from seed + r * 1,000,003: with seed 0, process 1 trained on
    the validation set. The hash comparison above sees it."""
    task = make_task("copy_first", seq_len=10)
    fixed = sequence_hashes(*task.validation_set())
    old_rank_1 = torch.Generator().manual_seed(0 + 1 * 1_000_003)
    assert sequence_hashes(*task.sample(task.validation_size, old_rank_1)) == fixed


def test_every_stream_of_many_runs_has_its_own_seed_and_none_is_a_fixed_sets():
    seeds = {}
    for seed in range(200):
        for purpose in PURPOSES:
            for index in ((0,), (1,), (2,), (7,)) if purpose == "train" else ((),):
                seeds[(seed, purpose, *index)] = stream_seed(seed, purpose, *index)
    values = list(seeds.values())
    assert len(set(values)) == len(values)
    assert not set(values) & set(FIXED_SETS.values())
    assert all(0 <= v < 2**32 for v in values)  # torch's mt19937 reads only the low 32 bits


def test_a_reserved_word_is_skipped(monkeypatch):
    import numpy as np

    import longrnn.streams as streams

    first = int(np.random.SeedSequence(5, spawn_key=(0, 0)).generate_state(1, np.uint32)[0])
    monkeypatch.setattr(streams, "_RESERVED", frozenset({first}))
    assert streams.stream_seed(5, "train", 0) != first


def test_streams_are_reproducible_and_the_fixed_sets_do_not_depend_on_any_run():
    assert torch.equal(torch.rand(4, generator=stream(3, "train", 1)), torch.rand(4, generator=stream(3, "train", 1)))
    assert not torch.equal(torch.rand(4, generator=stream(3, "train", 1)), torch.rand(4, generator=stream(3, "train")))
    assert fixed_set("validation").initial_seed() == VALIDATION_SEED and fixed_set("test").initial_seed() == TEST_SEED


@pytest.mark.parametrize("bad", [("train_batches",), ("train", -1), ("test",)])
def test_bad_stream_names_are_refused(bad):
    with pytest.raises(ValueError):
        stream(0, *bad)


def test_the_trainer_draws_batches_from_its_rank_s_training_stream(tmp_path, monkeypatch):
    import longrnn.training.trainer as trainer
    from longrnn.runs.config import RunConfig, apply_overrides

    calls = []
    real = trainer.stream
    monkeypatch.setattr(trainer, "stream", lambda *key: calls.append(key) or real(*key))
    config = apply_overrides(RunConfig(out=str(tmp_path)), ["task.name=adding", "task.seq_len=5", "model.hidden_size=4",
                                                            "train.steps=2", "train.eval_every=2", "train.batch_size=4",
                                                            "train.seed=1000003", "train.diagnostics=false"])
    trainer.train(config, quiet=True)
    assert calls == [(1_000_003, "train", 0)]
