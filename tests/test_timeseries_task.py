"""Task 'timeseries': a user's own recording for dynamical-systems reconstruction — read from .npy, .npz
or .csv, split into contiguous blocks (never interleaved) or whole trials, standardised on the training
part alone, trained with teacher forcing and scored by `longrnn dsr eval`."""

import json

import numpy as np
import pytest
import torch

from longrnn.cli import main
from longrnn.errors import UsageError
from longrnn.tasks import make_task


def recording(t=600, n=2, trials=None, seed=0):
    """A noisy two-variable oscillation, (t, n) or (trials, t, n)."""
    rng = np.random.default_rng(seed)
    time = np.arange(t) * 0.05
    one = lambda: np.stack([np.sin(time + k) for k in range(n)], -1) * 3 + 1 + 0.05 * rng.normal(size=(t, n))  # noqa: E731
    return one() if trials is None else np.stack([one() for _ in range(trials)])


def test_one_recording_is_split_into_contiguous_blocks_and_standardised_on_training_alone(tmp_path):
    x = recording()
    np.save(tmp_path / "rec.npy", x)
    task = make_task("timeseries", data=str(tmp_path / "rec.npy"), seq_len=20)
    train, val, test = task.data.train[0], task.validation_trajectory, task.test_trajectory
    assert (len(train), len(val), len(test)) == (360, 120, 120)
    mean, std = x[:360].mean(0), x[:360].std(0, ddof=1)
    torch.testing.assert_close(test, torch.as_tensor((x[480:] - mean) / std, dtype=torch.float32))  # in order
    torch.testing.assert_close(train.double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    x_val, y_val = task.validation_set()
    assert x_val.shape == (64, 20, 2) and torch.equal(x_val[:, 1:], y_val[:, :-1])  # the next sample as target


def test_npz_with_names_and_csv_with_dropped_columns_read_the_same_series(tmp_path):
    x = recording()
    np.savez(tmp_path / "rec.npz", x=x, variables=np.array(["a", "b"]))
    lines = ["time,a,b,label"] + [f"{i},{a!r},{b!r},walk" for i, (a, b) in enumerate(x.tolist())]
    (tmp_path / "rec.csv").write_text("\n".join(lines) + "\n")
    a = make_task("timeseries", data=str(tmp_path / "rec.npz"), seq_len=20)
    b = make_task("timeseries", data=str(tmp_path / "rec.csv"), seq_len=20, drop=["time", "label"])
    assert a.data.variables == b.data.variables == ("a", "b")
    torch.testing.assert_close(a.test_trajectory, b.test_trajectory)


def test_trials_are_split_whole_and_every_held_out_trial_is_scored(tmp_path):
    np.save(tmp_path / "trials.npy", recording(t=100, trials=10))
    task = make_task("timeseries", data=str(tmp_path / "trials.npy"), seq_len=20, split="trials")
    assert task.data.train.shape == (6, 100, 2) and task.test_trajectory.shape == (100, 2)
    x_test, _ = task.test_set()
    firsts = {tuple(w[0].tolist()) for w in x_test}
    assert any(tuple(step.tolist()) in firsts for step in task._test[1])  # windows of the second test trial too
    by_time = make_task("timeseries", data=str(tmp_path / "trials.npy"), seq_len=10)  # blocks of each trial
    assert by_time._test.shape == (10, 20, 2) and len(by_time.test_set()[0]) == 64


def test_drop_names_csv_columns_only(tmp_path):
    np.save(tmp_path / "r.npy", recording())
    with pytest.raises(UsageError, match="drop names columns of a .csv file"):
        make_task("timeseries", data=str(tmp_path / "r.npy"), seq_len=20, drop=["x0"])
    lines = ["\ufefftime,a"] + [f"{i},{v!r}" for i, v in enumerate(recording(n=1)[:, 0].tolist())]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")  # a spreadsheet's byte-order mark, one name
    task = make_task("timeseries", data=str(tmp_path / "r.csv"), seq_len=20, drop="time")
    assert task.data.variables == ("a",)
    with pytest.raises(UsageError, match="every column is dropped"):
        make_task("timeseries", data=str(tmp_path / "r.csv"), seq_len=20, drop=["time", "a"])


@pytest.mark.parametrize(("make", "options", "match"), [
    (lambda p: np.save(p / "r.npy", np.where(np.arange(20).reshape(10, 2) == 7, np.nan, 1.0)), {},
     "sample 3 of variable 'x1' is not finite"),
    (lambda p: np.save(p / "r.npy", recording(t=50)), {"seq_len": 20}, "seq_len must be below the shortest part"),
    (lambda p: np.save(p / "r.npy", np.ones((100, 2))), {"seq_len": 5}, "constant over the training part"),
    (lambda p: np.save(p / "r.npy", recording(t=100, trials=2)), {"seq_len": 5, "split": "trials"},
     "2 trials cannot be split by trials"),
    (lambda p: (p / "r.csv").write_text("a,b\n1,x\n"), {}, "line 2: column 'b' holds 'x', not a number"),
    (lambda p: np.save(p / "r.npy", recording()), {"test_fraction": 0.9}, "must leave a training part"),
])
def test_bad_recordings_are_one_clear_error(tmp_path, make, options, match):
    make(tmp_path)
    data = next(tmp_path.glob("r.*"))
    with pytest.raises(UsageError, match=match):
        make_task("timeseries", data=str(data), **options)


def test_train_with_teacher_forcing_then_dsr_eval_scores_the_test_block(tmp_path, capsys):
    np.save(tmp_path / "rec.npy", recording())
    argv = ["train", "--task", "timeseries", "--data", str(tmp_path / "rec.npy"), "--seq-len", "20", "--cell", "plrnn",
            "--hidden-size", "8", "--trainer", "teacher_forcing", "--steps", "4", "--eval-every", "2",
            "--batch-size", "4", "--threads", "1", "--quiet", "--out", str(tmp_path / "runs"), "--name", "r"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "runs" / "r" / "data.json").read_text())
    assert record["split"] == {"train": {"trials": 1, "samples": 360}, "validation": {"trials": 1, "samples": 120},
                               "test": {"trials": 1, "samples": 120}} and record["variables"] == ["x0", "x1"]
    assert main(["dsr", "eval", str(tmp_path / "runs" / "r"), "--burn-in", "10", "--no-plots"]) == 0
    result = json.loads(capsys.readouterr().out.split("run directory:")[-1].split("\n", 1)[1])
    assert result["length"] == 120 and np.isfinite(result["state_space_divergence"])


def test_the_shipped_accelerometer_recording():
    pytest.importorskip("aeon")
    task = make_task("timeseries", data="aeon:Daphnet_S06R02E0", seq_len=100)
    assert len(task.data.variables) == 9 and task.data.dt == pytest.approx(1 / 64)
    assert task.data.train.shape[1] + task.validation_trajectory.shape[0] + task.test_trajectory.shape[0] == 7040


def driven_recording(t=800, seed=0):
    """x_{t+1} = 0.9 x_t + s_t with a random stimulus s (known, not predicted): columns x, s."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=t)
    x = np.zeros(t)
    for i in range(1, t):
        x[i] = 0.9 * x[i - 1] + s[i - 1]
    return np.stack([x, s], -1)


def test_external_inputs_are_read_beside_the_observations_and_never_predicted(tmp_path):
    np.savez(tmp_path / "driven.npz", x=driven_recording(), variables=np.array(["x", "s"]))
    task = make_task("timeseries", data=str(tmp_path / "driven.npz"), seq_len=20, inputs=["s"])
    assert (task.input_size, task.output_size, task.data.variables, task.input_names) == (2, 1, ("x",), ["s"])
    x, y = task.validation_set()
    assert x.shape == (64, 20, 2) and y.shape == (64, 20, 1) and torch.equal(x[:, 1:, :1], y[:, :-1])
    assert task.test_inputs.shape == (task.test_trajectory.shape[0], 1)
    assert task.baseline("test")["mse"] > 0.1  # persistence cannot know the stimulus
    with pytest.raises(UsageError, match="no variable 'u' to take as an external input"):
        make_task("timeseries", data=str(tmp_path / "driven.npz"), seq_len=20, inputs=["u"])
    with pytest.raises(UsageError, match="every variable is an external input"):
        make_task("timeseries", data=str(tmp_path / "driven.npz"), seq_len=20, inputs=["s", "x"])


def test_a_driven_system_is_learned_and_scored_along_its_recorded_inputs(tmp_path, capsys):
    """The stimulus makes the series unpredictable without it: a model that reads it predicts far better
    than persistence, and `dsr eval` generates along the test trial's inputs."""
    np.savez(tmp_path / "driven.npz", x=driven_recording(), variables=np.array(["x", "s"]))
    argv = ["train", "--task", "timeseries", "--data", str(tmp_path / "driven.npz"), "--set", "task.options.inputs=s",
            "--seq-len", "20", "--cell", "gru", "--hidden-size", "16", "--trainer", "teacher_forcing",
            "--tf-interval", "5", "--steps", "300", "--eval-every", "100", "--batch-size", "16", "--lr", "0.01",
            "--threads", "1", "--quiet", "--out", str(tmp_path / "runs"), "--name", "d"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "runs" / "d" / "summary.json").read_text())
    assert summary["test"]["mse"] < 0.2 * summary["baseline"]["mse"], summary
    capsys.readouterr()
    assert main(["dsr", "eval", str(tmp_path / "runs" / "d"), "--burn-in", "10", "--no-plots"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["length"] == 160 - 10 and result["prediction_error_20"] < 0.5, result


def test_a_folder_of_recordings_of_different_lengths_is_one_trial_per_file(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    lengths = [300, 420, 250, 380, 330]
    for i, t in enumerate(lengths):
        np.save(folder / f"session{i}.npy", recording(t=t, seed=i))
    (folder / "notes.txt").write_text("not a recording")
    task = make_task("timeseries", data=str(folder), seq_len=20, split="trials", validation_fraction=0.2,
                     test_fraction=0.2)
    record = task.describe()
    assert record["split"] == {"train": {"trials": 3, "samples": [300, 420, 250]},
                               "validation": {"trials": 1, "samples": 380}, "test": {"trials": 1, "samples": 330}}
    assert task.test_trajectory.shape == (330, 2) and torch.isfinite(task.test_trajectory).all()
    x, y = task.sample(512, torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and torch.isfinite(y).all()  # no window reaches past a trial's end
    by_time = make_task("timeseries", data=str(folder), seq_len=20)  # blocks of every file
    assert by_time.describe()["split"]["test"] == {"trials": 5, "samples": [60, 84, 50, 76, 66]}
    np.save(folder / "session9.npy", recording(t=300, n=3))
    with pytest.raises(UsageError, match="every recording of a folder must hold the same ones"):
        make_task("timeseries", data=str(folder), seq_len=20)
    with pytest.raises(UsageError, match="a folder without recordings"):
        make_task("timeseries", data=str(tmp_path), seq_len=20)


@pytest.mark.parametrize(("options", "match"), [
    ({"inputs": 30}, "inputs must name variables: a name or a list of names, got 30"),
    ({"drop": [5]}, "drop must name variables"),
])
def test_options_naming_variables_take_names(tmp_path, options, match):
    np.save(tmp_path / "r.npy", recording())
    with pytest.raises(UsageError, match=match):
        make_task("timeseries", data=str(tmp_path / "r.npy"), seq_len=20, **options)


def test_a_repeated_variable_name_is_refused(tmp_path):
    np.savez(tmp_path / "r.npz", x=recording(), variables=np.array(["v", "v"]))
    with pytest.raises(UsageError, match="the variable name 'v' is given more than once"):
        make_task("timeseries", data=str(tmp_path / "r.npz"), seq_len=20)
    (tmp_path / "r.csv").write_text("v,v\n1,2\n")
    with pytest.raises(UsageError, match="names column 'v' more than once"):
        make_task("timeseries", data=str(tmp_path / "r.csv"), seq_len=20)
