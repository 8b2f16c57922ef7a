"""Task 'sequences': a user's own data from .npz, .csv, .ts and aeon, under the same protocol as the
built-in tasks (splits kept or drawn once, standardisation from the training part, real baselines)."""

import json

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from longrnn.cli import main
from longrnn.errors import UsageError
from longrnn.tasks import make_task

TINY = ["--hidden-size", "8", "--steps", "4", "--eval-every", "2", "--batch-size", "8", "--threads", "1", "--quiet"]


def memory_data(n=120, seed=0):
    """Ragged sequences whose class is the sign of the first input (only memory can tell), and whose
    last input is noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, n)
    x = rng.normal(size=(n, 12, 2))
    y = (x[:, 0, 0] > 0).astype(np.int64)
    return x, y, lengths


@pytest.fixture
def npz(tmp_path):
    x, y, lengths = memory_data()
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, lengths=lengths)
    return path


def write_csv(path, x, y, lengths, split=None):
    lines = ["id,time,a,b,y" + (",split" if split is not None else "")]
    for i, n in enumerate(lengths):
        for t in reversed(range(n)):  # rows in any order: time sorts them
            extra = f",{split[i]}" if split is not None else ""
            lines.append(f"s{i},{t},{float(x[i, t, 0])!r},{float(x[i, t, 1])!r},{y[i]}{extra}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_npz_sequences_keep_their_lengths_and_the_split_is_disjoint_and_seeded(npz):
    task = make_task("sequences", data=str(npz))
    _, _, lengths = memory_data()
    assert task.variable_length and task.seq_len == lengths.max() and task.input_size == 2
    assert torch.equal(task.lengths, torch.as_tensor(lengths))
    parts = [set(task.parts[k].tolist()) for k in ("train", "validation", "test")]
    assert sum(map(len, parts)) == 120 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert (len(parts[1]), len(parts[2])) == (24, 24)
    again = make_task("sequences", data=str(npz))
    other = make_task("sequences", data=str(npz), split_seed=1)
    assert torch.equal(again.parts["test"], task.parts["test"]) and not torch.equal(other.parts["test"],
                                                                                    task.parts["test"])
    x, y = task.sample(6, torch.Generator().manual_seed(0))
    assert isinstance(x, PackedSequence) and y.shape == (6,)


def test_the_data_split_is_kept_and_validation_is_drawn_from_training(tmp_path):
    x, y, lengths = memory_data()
    split = np.array(["train"] * 80 + ["test"] * 40)
    np.savez(tmp_path / "s.npz", x=x, y=y, lengths=lengths, split=split)
    task = make_task("sequences", data=str(tmp_path / "s.npz"))
    assert task.parts["test"].tolist() == list(range(80, 120))  # test stays test
    assert len(task.parts["validation"]) == 16 and max(task.parts["validation"].tolist()) < 80


def test_standardisation_uses_the_training_part_alone(npz):
    task = make_task("sequences", data=str(npz))
    valid = torch.arange(task.seq_len) < task.lengths.unsqueeze(1)
    train = task.x[task.parts["train"]][valid[task.parts["train"]]].double()
    torch.testing.assert_close(train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(train.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-5, rtol=0)
    test = task.x[task.parts["test"]][valid[task.parts["test"]]].double()
    assert abs(float(test.mean(0)[0])) > 1e-3  # not fitted on the test part
    assert not task.x[~valid].any()  # padding stays zero


def test_csv_in_long_format_reads_the_same_sequences_as_the_npz(tmp_path, npz):
    x, y, lengths = memory_data()
    path = write_csv(tmp_path / "mine.csv", x, y, lengths)
    from_csv, from_npz = make_task("sequences", data=str(path)), make_task("sequences", data=str(npz))
    assert torch.equal(from_csv.lengths, from_npz.lengths) and torch.equal(from_csv.y, from_npz.y)
    assert torch.allclose(from_csv.x, from_npz.x, atol=1e-6, rtol=0)


def test_regression_targets_give_mse_and_the_baselines_are_the_mean_and_a_least_squares_fit(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 6, 3))
    y = 2.0 * x[:, -1, :1] - x[:, -1, 1:2] + 0.5  # a function of the last input alone
    np.savez(tmp_path / "r.npz", x=x, y=y)
    task = make_task("sequences", data=str(tmp_path / "r.npz"))
    assert (task.objective, task.main_metric, task.output_size, task.variable_length) == ("regression", "mse", 1,
                                                                                            False)
    scores = task.baselines("test")
    assert scores["last input"]["mse"] < 1e-6 < scores["prior"]["mse"]  # the last input tells all here
    assert task.baseline("test") == scores["last input"]  # chosen on validation


def test_the_class_prior_and_the_last_input_classifier(npz):
    task = make_task("sequences", data=str(npz))
    scores = task.baselines("test")
    train_y = task.y[task.parts["train"]]
    majority = int(torch.bincount(train_y).argmax())
    assert scores["prior"]["accuracy"] == pytest.approx(float((task.y[task.parts["test"]] == majority).float().mean()))
    assert set(scores) == {"prior", "last input"} and task.expected_baseline() == scores["prior"]


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2))), "has no array 'y'"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.zeros(5)), "5 targets for 4 sequences"),
    (lambda p: np.savez(p, x=np.where(np.arange(24).reshape(4, 3, 2) == 9, np.nan, 1.0), y=np.arange(4)),
     "sequence 1 has a non-finite input \\(nan\\) at step 1, feature 1"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.arange(4), lengths=np.array([3, 0, 1, 2])),
     "sequence 1 has length 0"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.arange(4), split=np.array(["train", "dev", "test", "test"])),
     "split values \\['dev'\\]"),
    (lambda p: np.savez(p, x=np.zeros((6, 3, 2)), y=np.array([0, 1, 0, 1, 2, 2]),
                        split=np.array(["train"] * 4 + ["test"] * 2)), "labels \\[2\\] of the test part never occur"),
    (lambda p: np.savez(p, x=np.zeros((6, 3, 2)), y=np.zeros(6, dtype=int)), "the training part has one class"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.arange(4), split=np.array(["train"] * 3)),
     "split must give one part per sequence, shape \\(4,\\)"),
    (lambda p: np.savez(p, x=np.full((4, 3, 2), "a"), y=np.arange(4)), "x must hold real numbers"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)) + 0j, y=np.arange(4)), "x must hold real numbers"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.full(4, 1e39)), "targets beyond float32's range"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.zeros((4, 2, 2))), "cover 2 steps; the longest sequence has 3"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.zeros((4, 3, 2, 1))), "targets must be \\(N,\\), \\(N, C\\) or"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.full((4, 3), -5)), "per-step classes must be whole numbers"),
    (lambda p: np.savez(p, x=np.zeros((4, 3, 2)), y=np.full((4, 3, 1), np.inf)), "NaN marks a step without"),
    (lambda p: np.savez(p, x=np.ones((10, 3, 2)) * 1e39, y=np.arange(10) % 2, split=np.array(["train"] * 8 + [
        "validation", "test"])), "float32's range"),  # only with standardize=false (below) is it too large
    (lambda p: np.savez(p, x=np.zeros((10, 3, 2)), y=np.arange(10) % 2,
                        split=np.array(["train"] * 8 + ["validation"] * 2)), "the test part of .* is empty; mark some"),
    (lambda p: np.savez(p, x=np.array([np.zeros((2, 1)), np.zeros((3, 1))], dtype=object), y=np.arange(2)),
     "holds an object array"),
    (lambda p: p.write_bytes(b"not a zip"), "not a readable .npz file"),
])
def test_bad_files_are_one_clear_error(tmp_path, make, match):
    path = tmp_path / "bad.npz"
    make(path)
    options = {"standardize": False} if "float32" in match else {}
    with pytest.raises(UsageError, match=match):
        make_task("sequences", data=str(path), **options)


def test_huge_offsets_are_standardised_in_float64_and_keep_their_signal(tmp_path):
    x, y, lengths = memory_data()
    np.savez(tmp_path / "off.npz", x=x + 1e9, y=y, lengths=lengths)
    task = make_task("sequences", data=str(tmp_path / "off.npz"))
    valid = torch.arange(task.seq_len) < task.lengths.unsqueeze(1)
    assert task.x[valid][:, 0].unique().numel() > 100  # float32 first would leave one value: 1e9


@pytest.mark.parametrize(("rows", "match"), [
    (["a,1,0.5,0", "a,1,0.7,0"], "sequence 'a' has two rows at one 'time'"),
    (["a,0,0.5,0,train", "a,1,0.7,0,test"], "sequence 'a' has 2 different split parts"),
    (["a,0,0.5,0", "a,1,0.7"], "line 3: 3 cells for 4 columns"),
    (["a,0,x,0"], "line 2: column 'b' holds 'x', not a number"),
    (["a,0,,0", "a,1,0.7,0"], "sequence 0 has a non-finite input \\(nan\\) at step 0.*task.options.nan"),
    (["a,,0.5,0"], "line 2: column 'time' is empty"),
    (["a,0,0.5,"], "line 2: column 'y' is empty"),
])
def test_bad_csv_files_are_one_clear_error(tmp_path, rows, match):
    header = "id,time,b,y" + (",split" if "train" in rows[0] else "")
    (tmp_path / "bad.csv").write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(UsageError, match=match):
        make_task("sequences", data=str(tmp_path / "bad.csv"))


def test_a_spreadsheet_csv_with_a_byte_order_mark_and_real_targets_written_with_a_point(tmp_path):
    x, _, lengths = memory_data()
    y = np.round(x[:, 0, 0] * 10)  # whole-number values, written "3.0": a value, not a class
    path = write_csv(tmp_path / "r.csv", x, [f"{v:.1f}" for v in y], lengths)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    task = make_task("sequences", data=str(path))
    assert task.objective == "regression" and task.output_size == 1


def test_ragged_object_arrays_are_read_only_when_allowed(tmp_path):
    xs = np.empty(20, dtype=object)
    for i in range(20):
        xs[i] = np.full((2 + i % 3, 1), float(i))
    np.savez(tmp_path / "ragged.npz", x=xs, y=np.arange(20) % 2)
    task = make_task("sequences", data=str(tmp_path / "ragged.npz"), allow_pickle=True)
    assert task.lengths.tolist() == [2 + i % 3 for i in range(20)]


@pytest.mark.parametrize(("argv", "named"), [
    (["--task", "sequences"], "task 'sequences' needs its data"),
    (["--task", "sequences", "--data", "{tmp}/none.npz"], "no such file"),
    (["--task", "sequences", "--data", "{tmp}/mine.txt"], "unknown kind of file '.txt'"),
    (["--task", "sequences", "--data", "aeon:NoSuchArchive"], "aeon ships no archive 'NoSuchArchive'"),
    (["--task", "sequences", "--data", "{tmp}/mine.npz", "--seq-len", "5"], "has no option 'seq_len'"),
    (["--task", "sequences", "--data", "{tmp}/mine.npz", "--trainer", "teacher_forcing"],
     "needs a next-step prediction task"),
    (["--task", "sequences", "--data", "{tmp}/mine.npz", "--set", "task.options.test_fraction=1.5"],
     "test_fraction must be in [0, 1)"),
])
def test_bad_command_lines_are_one_line(tmp_path, npz, capsys, argv, named):
    (tmp_path / "mine.txt").write_text("x")
    code = main(["train", *[a.replace("{tmp}", str(tmp_path)) for a in argv], *TINY, "--out", str(tmp_path / "r")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], lines


def test_a_run_records_its_data_and_refuses_a_changed_file_on_resume(tmp_path, npz, capsys):
    argv = ["train", "--task", "sequences", "--data", str(npz), *TINY, "--out", str(tmp_path / "r"), "--name", "a"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "r" / "a" / "data.json").read_text())
    assert record["data"] == str(npz.resolve())  # by its absolute path: re-scored from any folder
    assert len(record["sha256"]) == 64 and record["sizes"]["test"] == 24
    out = capsys.readouterr().out
    assert "memoryless baselines on the test set: prior" in out and "last input" in out
    x, y, lengths = memory_data(seed=1)
    np.savez(npz, x=x, y=y, lengths=lengths)  # the file changes under the run
    for command in (["eval", str(tmp_path / "r" / "a")], [*argv, "--resume"]):  # re-score; resume a finished run
        assert main(command) == 2
        assert "changed since it was trained" in capsys.readouterr().err
    (tmp_path / "r" / "a" / "summary.json").unlink()  # as if it had been killed before its end
    assert main([*argv, "--resume"]) == 2
    assert "changed since it was trained" in capsys.readouterr().err


@pytest.mark.parametrize("trainer", [[], ["train.trainer=memup", "train.memup_rollout=12", "train.memup_targets=1"]],
                         ids=["bptt", "memup"])
def test_an_lstm_learns_what_only_memory_tells_well_above_both_baselines(tmp_path, npz, trainer):
    """The class is the sign of the first input; the last input is noise: the baselines stay near chance."""
    from longrnn.runs.config import RunConfig, apply_overrides
    from longrnn.training import train

    x, y, lengths = memory_data(n=400)
    np.savez(npz, x=x, y=y, lengths=lengths)
    config = apply_overrides(RunConfig(out=str(tmp_path), name="m"), [
        "task.name=sequences", f"task.options.data={npz}", "model.hidden_size=16", "train.steps=150",
        "train.eval_every=50", "train.batch_size=32", "train.lr=0.01", "train.threads=1", *trainer])
    summary = train(config, quiet=True)
    best_baseline = max(m["accuracy"] for m in summary["baselines"].values())
    assert best_baseline < 0.65 and summary["test"]["accuracy"] > 0.8, summary


def test_aeon_archives_keep_their_own_test_split():
    pytest.importorskip("aeon")
    task = make_task("sequences", data="aeon:JapaneseVowels")
    assert (task.input_size, task.output_size, len(task.parts["test"])) == (12, 9, 370)
    assert task.variable_length and len(task.parts["train"]) + len(task.parts["validation"]) == 270
    assert task.baselines("test")["last input"]["accuracy"] > 0.5  # the last frame alone tells much


def per_step_data(n=200, seed=0, classes=False):
    """Ragged sequences whose target at every step is the first input (only memory tells)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 10, n)
    x = rng.normal(size=(n, 10, 2))
    y = np.repeat(x[:, :1, :1], 10, axis=1)  # (N, T, 1)
    return x, ((y[..., 0] > 0).astype(np.int64) if classes else y), lengths


def test_per_step_targets_are_scored_up_to_each_sequence_end(tmp_path):
    x, y, lengths = per_step_data(classes=True)
    np.savez(tmp_path / "steps.npz", x=x, y=y, lengths=lengths)
    task = make_task("sequences", data=str(tmp_path / "steps.npz"))
    assert task.per_step and task.readout == "all" and task.objective == "classification"
    xs, ys = task.validation_set()
    padded, got_lengths = torch.nn.utils.rnn.pad_packed_sequence(xs, batch_first=True)
    assert ys.shape == padded.shape[:2]
    for row, n in zip(ys, got_lengths):
        assert (row[n:] == -100).all() and (row[:n] >= 0).all()
    perfect = torch.nn.functional.one_hot(ys.clamp(min=0), 2).float() * 10
    assert task.metrics(perfect, ys)["accuracy"] == 1.0  # padding is neither right nor wrong
    assert task.baselines()["prior"]["accuracy"] < 0.65


def test_a_model_learns_per_step_targets_from_memory_beyond_the_baselines(tmp_path):
    from longrnn.runs.config import RunConfig, apply_overrides
    from longrnn.training import train

    x, y, lengths = per_step_data(n=300)
    np.savez(tmp_path / "steps.npz", x=x, y=y, lengths=lengths)
    config = apply_overrides(RunConfig(out=str(tmp_path), name="m"), [
        "task.name=sequences", f"task.options.data={tmp_path / 'steps.npz'}", "model.cell=gru",
        "model.hidden_size=16", "train.steps=150", "train.eval_every=50", "train.batch_size=32", "train.lr=0.01",
        "train.threads=1"])
    summary = train(config, quiet=True)
    best_baseline = min(m["mse"] for m in summary["baselines"].values())
    assert summary["test"]["mse"] < 0.5 * best_baseline, summary


@pytest.mark.parametrize(("nan", "expected"), [("mean", [1.0, 2.0, 3.0, 2.0]), ("previous", [1.0, 2.0, 3.0, 3.0])])
def test_missing_inputs_are_filled_as_nan_says(tmp_path, nan, expected):
    x = np.array([[1.0, 2.0, 3.0, np.nan]] * 6)[..., None]  # the training mean of the observed steps is 2
    np.savez(tmp_path / "gaps.npz", x=x, y=np.arange(6) % 2, split=np.array(["train"] * 4 + ["validation", "test"]))
    task = make_task("sequences", data=str(tmp_path / "gaps.npz"), nan=nan, standardize=False)
    assert task.x[0, :, 0].tolist() == expected
    with pytest.raises(UsageError, match="set task.options.nan to mean or previous"):
        make_task("sequences", data=str(tmp_path / "gaps.npz"))
    with pytest.raises(UsageError, match="nan"):
        make_task("sequences", data=str(tmp_path / "gaps.npz"), nan="zero")


def test_a_repeated_csv_column_is_refused(tmp_path):
    (tmp_path / "twice.csv").write_text("id,time,v,v,y\na,0,1,2,0\n")
    with pytest.raises(UsageError, match="names column 'v' more than once"):
        make_task("sequences", data=str(tmp_path / "twice.csv"))


@pytest.mark.parametrize(("y", "options", "match"), [
    (lambda y: np.where(np.arange(len(y))[:, None] < 160, y, -100), {}, "part of .* has no step with a target"),
    (lambda y: y, {"objective": "regression"}, "per-step \\(N, T\\) whole-number targets are classes"),
    (lambda y: y.astype(np.float64), {"objective": "classification"}, "class labels must be one per sequence"),
])
def test_per_step_targets_that_cannot_be_learned_or_scored_are_refused(tmp_path, y, options, match):
    x, labels, lengths = per_step_data(classes=True)
    np.savez(tmp_path / "s.npz", x=x, y=y(labels), lengths=lengths,
             split=np.array(["train"] * 160 + ["validation"] * 20 + ["test"] * 20))
    with pytest.raises(UsageError, match=match):
        make_task("sequences", data=str(tmp_path / "s.npz"), **options)


def test_partly_missing_value_targets_fit_each_baseline_target_on_the_steps_that_have_it(tmp_path):
    x, y, lengths = per_step_data(n=60)
    y = np.concatenate([y, 5 + y], axis=-1)  # (N, T, 2)
    y[::2, :, 1] = np.nan  # the second target is missing in every other sequence
    np.savez(tmp_path / "s.npz", x=x, y=y, lengths=lengths)
    task = make_task("sequences", data=str(tmp_path / "s.npz"), standardize=False)
    train = task.y[task.parts["train"]].reshape(-1, 2)
    expected = torch.stack([train[:, c][~train[:, c].isnan()].mean() for c in range(2)])
    prior = task._predictors()["prior"](torch.zeros(1, 2))[0]
    torch.testing.assert_close(prior, expected)
    task.baselines()  # both targets fitted: no singular system
    flat = torch.tensor([[1 << 40, 3, -100]] * 6)
    np.savez(tmp_path / "big.npz", x=np.zeros((6, 3, 1)), y=flat.numpy(),
             split=np.array(["train"] * 4 + ["validation", "test"]))
    assert make_task("sequences", data=str(tmp_path / "big.npz")).classes == [3, 1 << 40]  # no table of 2**40


def test_a_batch_without_a_scored_step_has_loss_zero_not_nan(tmp_path):
    x, y, lengths = per_step_data(classes=True)
    np.savez(tmp_path / "s.npz", x=x, y=y, lengths=lengths)
    task = make_task("sequences", data=str(tmp_path / "s.npz"))
    unscored = torch.full((2, 5), -100)
    assert task.loss(torch.randn(2, 5, 2), unscored).item() == 0.0


def test_a_csv_with_a_target_per_step_reads_as_the_npz_does(tmp_path):
    x, y, lengths = per_step_data(n=40, classes=True)
    y[:, 1::2] = 1 - y[:, 1::2]  # targets that change from step to step
    np.savez(tmp_path / "steps.npz", x=x, y=y, lengths=lengths)
    lines = ["id,time,a,b,y"]
    for i, n in enumerate(lengths):
        lines += [f"s{i:03d},{t},{float(x[i, t, 0])!r},{float(x[i, t, 1])!r},{y[i, t]}" for t in range(n)]
    (tmp_path / "steps.csv").write_text("\n".join(lines) + "\n")
    a = make_task("sequences", data=str(tmp_path / "steps.npz"))
    b = make_task("sequences", data=str(tmp_path / "steps.csv"), step_targets=True)
    assert b.per_step and b.readout == "all" and b.classes == a.classes
    torch.testing.assert_close(b.y, a.y)
    with pytest.raises(UsageError, match="2 different targets"):  # without the option: one per sequence
        make_task("sequences", data=str(tmp_path / "steps.csv"))
    with pytest.raises(UsageError, match="step_targets reads a .csv"):
        make_task("sequences", data=str(tmp_path / "steps.npz"), step_targets=True)
