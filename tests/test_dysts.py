"""Task 'dysts': the dysts catalogue's chaotic systems as reconstruction data — our Lorenz-63 against
dysts's (β = 8/3 against 2.667), independent seeded trajectories, the task's data record, the CLI path
through `dsr eval`, and clear refusals."""

import json

import numpy as np
import pytest
import torch

dysts = pytest.importorskip("dysts")

from longrnn.cli import main  # noqa: E402
from longrnn.dsr.dysts_systems import dysts_flow, simulate_dysts, transient_growth  # noqa: E402
from longrnn.dsr.systems import BETA, lorenz63_field  # noqa: E402
from longrnn.errors import UsageError  # noqa: E402
from longrnn.tasks import make_task  # noqa: E402
from longrnn.training.build import check_data, record_data  # noqa: E402

SMALL = {"length": 400, "transient": 200, "seq_len": 40, "validation_size": 8, "test_size": 8}


def test_our_lorenz63_is_dysts_lorenz_but_for_beta():
    flow = dysts_flow("Lorenz")
    assert flow.params == {"beta": 2.667, "rho": 28, "sigma": 10} and BETA == 8 / 3
    x = np.random.default_rng(0).normal(0, 10, (50, 3))
    theirs = np.stack([np.asarray(flow.rhs(point, 0.0), dtype=float) for point in x])
    difference = lorenz63_field(x) - theirs
    np.testing.assert_allclose(difference[:, :2], 0, atol=1e-12)
    np.testing.assert_allclose(difference[:, 2], -(8 / 3 - 2.667) * x[:, 2], rtol=1e-9)  # only β z differs


def test_trajectories_are_seeded_on_the_attractor_and_not_copies_of_one_another():
    a = simulate_dysts("Rossler", 3, 300, seed=0, transient=200)
    assert a.shape == (3, 300, 3) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, simulate_dysts("Rossler", 3, 300, seed=0, transient=200))
    assert not np.allclose(a, simulate_dysts("Rossler", 3, 300, seed=1, transient=200))
    assert min(np.abs(a[i] - a[j]).max() for i in range(3) for j in range(i)) > 0.5  # three different paths
    assert transient_growth("Lorenz") == pytest.approx(np.exp(0.8917 * 1000 * 1.5008 / 100), rel=1e-3)


def test_the_task_standardises_on_training_and_records_the_system(tmp_path):
    task = make_task("dysts", system="HyperRossler", **SMALL)
    assert task.input_size == task.output_size == 4
    train = task.data.train[0].double()
    torch.testing.assert_close(train.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-5, rtol=0)
    x, y = task.validation_set()
    assert x.shape == (8, 40, 4) and torch.equal(x[:, 1:], y[:, :-1])
    assert not torch.allclose(task.validation_trajectory, task.test_trajectory)
    record = task.describe()
    assert record["data"] == "dysts:HyperRossler" and record["dimension"] == 4 and record["lyapunov_max"] > 0
    assert record["dt"] == pytest.approx(dysts_flow("HyperRossler").period / 100)
    record_data(tmp_path, task, resumed=False)
    check_data(tmp_path, task)  # the same data pass
    other = make_task("dysts", system="HyperRossler", data_seed=1, **SMALL)
    with pytest.raises(UsageError, match="changed since it was trained"):
        check_data(tmp_path, other)


@pytest.mark.parametrize("options, message", [
    ({}, "needs its system: --system NAME"),
    ({"system": "Lorenz63"}, "dysts has no system 'Lorenz63'"),
    ({"system": "rossler"}, "did you mean .*Rossler"),
    ({"system": "MackeyGlass"}, "delay differential equation"),
    ({"system": "Torus"}, "driven by an explicit time dependence"),  # not marked so by dysts
    ({"system": "Rossler", "noise": -1.0}, "noise must be >= 0"),
    ({"system": "Rossler", "points_per_period": 0}, "points_per_period must be a positive integer"),
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(UsageError, match=message):
        make_task("dysts", **options)


def test_train_then_dsr_eval_from_the_command_line(tmp_path, capsys):
    argv = ["train", "--task", "dysts", "--system", "Rossler", "--set", "task.options.length=400",
            "--set", "task.options.transient=200", "--seq-len", "40", "--cell", "plrnn", "--hidden-size", "8",
            "--trainer", "teacher_forcing", "--steps", "4", "--eval-every", "2", "--batch-size", "4",
            "--threads", "1", "--quiet", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("dysts-Rossler-T40-plrnn")
    assert json.loads((run / "data.json").read_text())["system"] == "Rossler"
    capsys.readouterr()
    assert main(["dsr", "eval", str(run), "--burn-in", "10", "--no-plots"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["length"] == 400 and np.isfinite(result["power_spectrum_distance"])
    assert main(["train", "--task", "dysts", "--system", "NoSuchSystem", "--steps", "1"]) == 2
    assert "dysts has no system 'NoSuchSystem'" in capsys.readouterr().err
    assert main([*argv, "--trainer", "memup", "--memup-rollout", "8", "--memup-targets", "2", "--name", "m"]) == 0
    capsys.readouterr()
    assert main(["dsr", "eval", str(tmp_path / "runs" / "m"), "--no-plots"]) == 2
    assert "was trained by MemUP" in capsys.readouterr().err


def test_a_plrnn_learns_the_rossler_flow(tmp_path):
    """A real learning test on a tiny budget: one-step-ahead error falls well below the untrained model's."""
    from longrnn.runs.config import RunConfig
    from longrnn.training.trainer import train

    config = RunConfig()
    config.task.name, config.task.seq_len = "dysts", 40
    config.task.options = {"system": "Rossler", "length": 2000, "transient": 200}
    config.model.cell, config.model.hidden_size = "plrnn", 16
    config.train.steps, config.train.eval_every, config.train.batch_size, config.train.lr = 300, 300, 16, 3e-3
    config.train.threads, config.out = 1, str(tmp_path)
    summary = train(config, quiet=True)
    assert summary["validation"]["mse"] < 0.1, summary["validation"]


def test_list_systems_names_the_flows_that_can_be_reconstructed(capsys):
    assert main(["list", "systems"]) == 0
    out = capsys.readouterr().out
    assert "  Rossler " in out and "HyperRossler" in out and "3-D, λ_max 0.151" in out
    assert "MackeyGlass" not in out and "  Torus " not in out  # a delay equation; a field of t alone


def test_without_the_extra_the_task_says_which_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dysts", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"pip install 'longrnn\[dysts\]'"):
        make_task("dysts", system="Rossler")
