"""The tasks added with MemUP: scattered_copy and tmaze."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.errors import UsageError
from longrnn.tasks import available, make_task
from longrnn.tasks.copy import BLANK, DELIMITER, N_RECALL

FAST = settings(max_examples=15, deadline=None)


def test_registered():
    assert {"scattered_copy", "tmaze"} <= set(available())


@FAST
@given(st.integers(1, 40), st.integers(0, 1000))
def test_scattered_copy_layout(delay, seed):
    task = make_task("scattered_copy", seq_len=delay)
    x, y = task.sample(6, torch.Generator().manual_seed(seed))
    assert x.shape == (6, delay + 20, 10) and y.shape == (6, delay + 20)
    tokens = x.argmax(-1)
    assert (x.sum(-1) == 1).all()
    assert (tokens[:, delay + 9] == DELIMITER).all() and (tokens[:, delay + 10 :] == BLANK).all()
    for row_tokens, row_y in zip(tokens, y):
        before = row_tokens[: delay + 9]
        symbols = before[before != BLANK]
        assert len(symbols) == N_RECALL and (symbols < 8).all()
        assert row_y[delay + 10 :].tolist() == symbols.tolist()  # recalled in order of appearance
        assert (row_y[: delay + 10] == BLANK).all()


@FAST
@given(st.integers(1, 30), st.integers(1, 12), st.booleans(), st.integers(0, 1000))
def test_copy_with_fewer_or_more_symbols(delay, recall, scattered, seed):
    task = make_task("scattered_copy" if scattered else "copy", seq_len=delay, recall=recall)
    x, y = task.sample(4, torch.Generator().manual_seed(seed))
    assert x.shape == (4, delay + 2 * recall, 10) and task.seq_len == delay + 2 * recall
    tokens = x.argmax(-1)
    assert (tokens[:, delay + recall - 1] == DELIMITER).all()
    for row_tokens, row_y in zip(tokens, y):
        symbols = row_tokens[: delay + recall - 1]
        symbols = symbols[symbols != BLANK]
        assert len(symbols) == recall and row_y[delay + recall :].tolist() == symbols.tolist()
        assert (row_y[: delay + recall] == BLANK).all()
    assert task.expected_baseline()["ce"] == pytest.approx(recall * math.log(8) / (delay + 2 * recall))


def test_scattered_copy_spreads_the_symbols_and_keeps_the_copy_baseline():
    task = make_task("scattered_copy", seq_len=50, validation_size=8, test_size=400)
    x, _ = task.sample(400, torch.Generator().manual_seed(0))
    positions = (x[:, : 59].argmax(-1) != BLANK).nonzero()[:, 1].float()
    assert positions.min() == 0 and positions.max() == 58 and abs(positions.mean() - 29) < 2
    assert task.expected_baseline() == make_task("copy", seq_len=50).expected_baseline()
    assert abs(task.baseline()["accuracy"] - 1 / 8) < 0.02


@FAST
@given(st.integers(2, 60), st.integers(0, 1000))
def test_tmaze_layout(seq_len, seed):
    task = make_task("tmaze", seq_len=seq_len)
    x, y = task.sample(8, torch.Generator().manual_seed(seed))
    assert x.shape == (8, seq_len, 3) and y.shape == (8,) and y.dtype == torch.long
    assert torch.equal(x[:, 0, 0], 2.0 * y - 1.0) and (x[:, 1:, 0] == 0).all()  # the hint, at step 0 only
    assert (x[:, -1, 1] == 1).all() and (x[:, :-1, 1] == 0).all()  # the junction, at the last step
    assert set(x[:, :, 2].unique().tolist()) <= {-1.0, 1.0}


def test_tmaze_without_noise_and_bad_lengths():
    x, _ = make_task("tmaze", seq_len=10, noise=False).sample(4, torch.Generator())
    assert (x[:, :, 2] == 0).all()
    with pytest.raises(UsageError, match="seq_len"):
        make_task("tmaze", seq_len=1)
    with pytest.raises(UsageError, match="noise"):
        make_task("tmaze", noise="yes")


def test_tmaze_baseline_and_perfect_predictor():
    task = make_task("tmaze", seq_len=20, validation_size=8, test_size=1000)
    base = task.baseline()
    assert base["ce"] == pytest.approx(math.log(2)) and abs(base["accuracy"] - 0.5) < 0.05
    x, y = task.test_set()
    perfect = 20.0 * torch.stack([-x[:, 0, 0], x[:, 0, 0]], dim=1)  # read the hint
    assert task.metrics(perfect, y)["accuracy"] == 1.0
    y_steps, scored = task.step_targets(y)
    assert scored[:, -1].all() and not scored[:, :-1].any()
    assert task.step_loss(perfect.unsqueeze(1).expand(-1, 20, -1), y_steps)[scored].max() < 1e-6
