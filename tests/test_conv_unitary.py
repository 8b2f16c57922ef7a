"""The convolutional cells (conv_unitary, conv_rnn), the spatial_copy task and their wiring into the trainer."""

import math
from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from longrnn.cells import make_cell
from longrnn.cells.conv_unitary import KernelSpectrum, magnasco
from longrnn.errors import UsageError
from longrnn.functional.convexp import apply_spectrum, conv_exp, dense_operator
from longrnn.functional.lattice import parse_lattice, sites
from longrnn.models import Recurrent, SequenceModel
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.tasks import make_task
from longrnn.training import build_model, build_task, train

SMALL_SETS = {"validation_size": 32, "test_size": 32}


def cell64(name="conv_unitary", input_size=3, **options):
    torch.manual_seed(0)
    units = options.get("channels", 1) * sites(parse_lattice(options["lattice"]))
    return make_cell(name, input_size, units, **options).double()


# --- the cell ------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"lattice": "5", "channels": 1},
    {"lattice": "4x3", "channels": 2},
    {"lattice": "3x4", "channels": 2, "complex_state": True},
    {"lattice": "6", "channels": 2, "stencil": 0, "complex_state": True},
])
def test_recurrent_operator_is_the_exponential_of_the_skew_generator(options):
    cell = cell64(init_scale=2.0, **options)
    A = cell.generator_kernel().detach()
    D_A = dense_operator(A)
    assert torch.allclose(D_A, -D_A.conj().T, atol=1e-15, rtol=0)
    D_U = dense_operator(cell.recurrent_kernel().detach())
    assert torch.allclose(D_U, torch.linalg.matrix_exp(D_A), atol=1e-12, rtol=0)
    assert torch.allclose(D_U.conj().T @ D_U, torch.eye(D_U.shape[0], dtype=D_U.dtype), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name,options", [
    ("conv_unitary", {"lattice": "4x3", "channels": 2}),
    ("conv_unitary", {"lattice": "5", "channels": 2, "complex_state": True}),
    ("conv_unitary", {"lattice": "5", "nonlinearity": "tanh"}),
    ("conv_rnn", {"lattice": "3x4", "channels": 2}),
])
def test_step_matches_the_dense_equation(name, options):
    """h_t = φ(D_U h_{t-1} + W x_t + b), with D_U the dense operator of the cell's kernel."""
    cell = cell64(name, **options)
    dtype = torch.complex128 if cell.complex_state else torch.float64
    h = torch.randn(2, cell.hidden_size, dtype=dtype)
    x = torch.randn(2, 3, dtype=torch.float64)
    out, state = cell(x, h)
    D = dense_operator(cell.recurrent_kernel().detach())
    if not cell.constrained:
        assert torch.allclose(D, dense_operator(cell.generator_kernel().detach()), atol=1e-12, rtol=0)
    z = h @ D.T.to(dtype) + cell.project_input(x)
    expected = magnasco(z) if cell.activation is None else cell.activation(z)
    assert torch.allclose(state, expected, atol=1e-12, rtol=0)
    if cell.complex_state:
        assert out.shape == (2, 2 * cell.hidden_size) and not out.is_complex()
        assert torch.equal(out, torch.cat([state.real, state.imag], dim=-1))


def test_sizes_follow_the_lattice_and_channels():
    cell = make_cell("conv_unitary", 5, 72, lattice="6x4", channels=3)
    assert (cell.lattice, cell.hidden_size, cell.output_size) == ((6, 4), 72, 72)
    cell = make_cell("conv_unitary", 5, 128, lattice="8x8")  # channels = hidden_size / sites
    assert (cell.channels, cell.hidden_size) == (2, 128)
    cell = make_cell("conv_unitary", 5, 12, channels=3, complex_state=True)  # no lattice: 1-D, hidden/channels
    assert (cell.lattice, cell.hidden_size, cell.output_size) == ((4,), 12, 24)
    assert cell.init_state(2).dtype == torch.complex64
    assert cell.init_state(2, dtype=torch.float64).dtype == torch.complex128
    assert make_cell("conv_unitary", 1, 2).stencil == 0  # narrower than 3 sites: the whole lattice


def test_unconstrained_kernel_starts_near_identity_and_is_free():
    cell = cell64("conv_rnn", lattice="5", init_scale=0.3)
    K = cell.generator_kernel().detach()[0, 0]
    assert abs(K[0] - 1) < 0.5 and K[2:4].abs().max() == 0  # δ + a 3-tap perturbation
    with torch.no_grad():
        cell.recurrent.parametrizations.weight.original.mul_(3.0)
    norms = apply_spectrum(cell.recurrent_spectrum, torch.eye(5, dtype=torch.float64).unsqueeze(1), onesided=True)
    assert not torch.allclose(norms.flatten(1).norm(dim=1), torch.ones(5, dtype=torch.float64))  # not orthogonal


def test_kernel_spectrum_is_computed_once_per_sequence(monkeypatch):
    calls = []
    forward = KernelSpectrum.forward
    monkeypatch.setattr(KernelSpectrum, "forward", lambda self, P: calls.append(1) or forward(self, P))
    layer = Recurrent(make_cell("conv_unitary", 2, 32, lattice="4x4", channels=2))
    layer(torch.randn(3, 9, 2))
    assert len(calls) == 1


def test_norm_of_the_linear_recurrence_is_kept_over_many_steps():
    cell = cell64(lattice="8x6", channels=2, init_scale=3.0)
    h = torch.randn(4, 2, 8, 6, dtype=torch.float64)
    start = h.flatten(1).norm(dim=1)
    with parametrize.cached():
        for _ in range(200):
            h = apply_spectrum(cell.recurrent_spectrum, h, onesided=True)
    assert torch.allclose(h.flatten(1).norm(dim=1), start, atol=1e-10, rtol=0)


def test_conv_input_map_is_local_on_the_lattice():
    cell = cell64(input_size=2 * 25, lattice="5x5", channels=1, input_map="conv", input_stencil=3)
    x = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    base = cell.project_input(x.flatten(1)).reshape(5, 5)
    x[0, 0, 0, 0] = 1.0  # one site of the first input channel
    changed = (cell.project_input(x.flatten(1)).reshape(5, 5) - base).abs() > 0
    expected = torch.zeros(5, 5, dtype=torch.bool)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            expected[i % 5, j % 5] = True  # neighbours across the periodic boundary
    assert torch.equal(changed, expected)


def test_gradients_reach_the_generator():
    model = SequenceModel("conv_unitary", 3, 24, 2, lattice="4x3", channels=2, complex_state=True).double()
    y, _ = model(torch.randn(2, 5, 3, dtype=torch.float64))
    y.sum().backward()
    grad = model.cells[0].recurrent.parametrizations.weight.original.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("options,match", [
    ({"lattice": "3y4"}, "lattice"),
    ({"lattice": "2x3x4"}, "lattice"),
    ({"lattice": "0"}, "lattice"),
    ({"lattice": "8", "stencil": 4}, "stencil"),
    ({"lattice": "4", "stencil": 5}, "stencil"),
    ({"complex_state": True, "nonlinearity": "tanh"}, "magnasco"),
    ({"nonlinearity": "relu"}, "nonlinearity"),
    ({"lattice": "8", "input_map": "conv"}, "multiple"),
    ({"lattice": "3x3"}, "hidden_size 8 does not fit the lattice 3x3 \\(9 sites\\) × channels"),
    ({"lattice": "4", "channels": 1}, "hidden_size 8 does not fit the lattice 4 \\(4 sites\\) × 1 channel\\(s\\) = 4"),
    ({"channels": 0}, "channels"),
    ({"channels": 3}, "multiple of channels"),
])
def test_bad_options_are_usage_errors(options, match):
    with pytest.raises(UsageError, match=match):
        make_cell("conv_unitary", 3, 8, **options)


def test_parse_lattice():
    assert parse_lattice("32x32") == (32, 32)
    assert parse_lattice("64") == parse_lattice(64) == (64,)
    assert parse_lattice([8, 4]) == (8, 4)
    for bad in ("", "x", "4x", "-4", "4.5", True, 0, [], [1, 2, 3]):
        with pytest.raises(UsageError, match="lattice"):
            parse_lattice(bad)


# --- the task -------------------------------------------------------------------------------------


def test_spatial_copy_layout_and_baseline():
    task = make_task("spatial_copy", seq_len=6, lattice="3x4", **SMALL_SETS)
    assert (task.input_size, task.output_size, task.seq_len, task.readout) == (24, 12, 8, "last")
    x, y = task.sample(5, torch.Generator().manual_seed(0))
    grid = x.reshape(5, 8, 2, 12)
    assert torch.equal(grid[:, 0, 0], 2 * y - 1)  # the pattern as ±1 at step 0
    assert not grid[:, 1:, 0].any() and not grid[:, :-1, 1].any()
    assert torch.equal(grid[:, -1, 1], torch.ones(5, 12))  # the cue
    base = task.baseline()
    assert base["accuracy"] == pytest.approx(1 - float(task.test_set()[1].mean()))  # logit 0 reads as 0
    assert base["bce"] == pytest.approx(math.log(2))
    perfect = task.metrics(20 * (2 * task.test_set()[1] - 1), task.test_set()[1])
    assert perfect["accuracy"] == perfect["pattern_accuracy"] == 1.0


def test_spatial_copy_density_and_noise():
    task = make_task("spatial_copy", seq_len=50, lattice="16x16", density=0.2, noise=0.5, **SMALL_SETS)
    x, y = task.sample(64, torch.Generator().manual_seed(1))
    assert abs(float(y.mean()) - 0.2) < 0.02
    blanks = x.reshape(64, 52, 2, 256)[:, 1:, 0]
    assert abs(float(blanks.std()) - 0.5) < 0.02
    expected = task.expected_baseline()
    assert expected["accuracy"] == pytest.approx(0.8)
    assert expected["bce"] == pytest.approx(-(0.2 * math.log(0.2) + 0.8 * math.log(0.8)))
    assert abs(task.baseline()["accuracy"] - 0.8) < 0.03


@pytest.mark.parametrize("options,match", [
    ({"density": 1.0}, "density"), ({"noise": -1.0}, "noise"), ({"lattice": "8y8"}, "lattice"),
])
def test_spatial_copy_bad_options(options, match):
    with pytest.raises(UsageError, match=match):
        make_task("spatial_copy", **options)


# --- config, build and training ----------------------------------------------------------------------


def config(tmp_path, *overrides) -> RunConfig:
    base = ["task.name=spatial_copy", "task.seq_len=8", "model.cell=conv_unitary", "model.lattice=4x4",
            "model.channels=2", "model.hidden_size=32", "train.threads=1", "task.validation_size=64",
            "task.test_size=64", f"out={tmp_path}"]
    return apply_overrides(RunConfig(), base + list(overrides))


def test_the_model_lattice_reaches_task_and_cell(tmp_path):
    c = config(tmp_path)
    task = build_task(c)
    model = build_model(c, task)
    cell = model.cells[0]
    assert task.lattice == cell.lattice == (4, 4)
    assert (cell.channels, cell.input_map) == (2, "conv")
    lstm = config(tmp_path, "model.cell=lstm")  # the task still takes the lattice
    lstm.model.channels = None
    assert build_task(lstm).lattice == (4, 4) and build_model(lstm, build_task(lstm)) is not None


def test_mismatched_lattices_are_refused(tmp_path):
    c = config(tmp_path, "task.lattice=8x8")
    with pytest.raises(UsageError, match="differs"):
        build_model(c, build_task(c))
    c = config(tmp_path, "task.name=copy", "model.cell=lstm")
    c.model.channels = None
    with pytest.raises(UsageError, match="lattice"):
        build_model(c, build_task(c))


def test_lattice_keys_enter_the_identity_only_when_set():
    """(Settings added later leave older identities alone: tests/test_config.py.)"""
    c = RunConfig()
    assert "lattice" in c.to_dict()["model"]
    assert apply_overrides(RunConfig(), ["model.lattice=8x8"]).identity() != c.identity()
    assert apply_overrides(RunConfig(), ["model.channels=2"]).identity() != c.identity()


def test_conv_unitary_learns_spatial_copy_well_above_the_baseline(tmp_path):
    c = config(tmp_path, "task.seq_len=20", "train.steps=120", "train.lr=0.01", "train.batch_size=32",
               "train.eval_every=40", "train.seed=0")
    summary = train(c, quiet=True)
    assert summary["baseline"]["accuracy"] < 0.55
    assert summary["test"]["accuracy"] > 0.9, summary["test"]


def test_conv_unitary_runs_on_the_sequence_tasks():
    for name, options in (("copy", {"seq_len": 5}), ("adding", {"seq_len": 10})):
        task = make_task(name, **options, **SMALL_SETS)
        model = SequenceModel("conv_unitary", task.input_size, 16, task.output_size, readout=task.readout,
                              channels=2, complex_state=True)
        x, y = task.sample(4, torch.Generator().manual_seed(0))
        task.loss(model(x)[0], y).backward()


def test_conv_exp_of_the_trained_kind_of_kernel_is_real():
    cell = make_cell("conv_unitary", 2, 72, lattice="6x6", channels=2).double()
    assert not cell.recurrent_kernel().is_complex()
    assert torch.allclose(cell.recurrent_kernel(), conv_exp(cell.generator_kernel()), atol=1e-12, rtol=0)


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_train_spatial_copy_with_lattice_and_channels(tmp_path, capsys):
    from longrnn.cli import main

    code = main(["train", "--task", "spatial_copy", "--cell", "conv_unitary", "--lattice", "4x4", "--channels", "2",
                 "--hidden-size", "32", "--seq-len", "5", "--steps", "4", "--eval-every", "2", "--batch-size", "4",
                 "--threads", "1", "--set", "task.validation_size=8", "--set", "task.test_size=8",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0
    assert "spatial_copy" in capsys.readouterr().out
    code = main(["train", "--task", "spatial_copy", "--cell", "conv_unitary", "--lattice", "4by4",
                 "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "4by4" in err and len(err.strip().splitlines()) == 1


def test_cli_bench_convexp_prints_ratios_at_tiny_sizes(capsys):
    from longrnn.cli import main

    assert main(["bench", "convexp", "--sizes", "4", "8", "--dense-max", "64", "--repeats", "1", "--warmup-rounds", "0",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| 8x8 | 64 | conv_unitary |" in out and "| 8x8 | 64 | dense expm |" in out
    assert "orthogonal RNN" in out


SPATIAL_SWEEP = """
name = "tiny_spatial"
description = "A tiny spatial grid."
results = "{root}/page.md"
out = "{root}/runs"
seeds = [0]

[base.train]
steps = 4
eval_every = 2
batch_size = 4
threads = 1

[[tasks]]
label = "spatial_copy T=3"
task = {{ name = "spatial_copy", seq_len = 3, options = {{ lattice = "4x4", validation_size = 8, test_size = 8 }} }}

[[tasks]]
label = "copy T=2"
task = {{ name = "copy", seq_len = 2, options = {{ validation_size = 8, test_size = 8 }} }}

[[variants]]
label = "conv unitary"
model = {{ cell = "conv_unitary", hidden_size = 32 }}

[[variants]]
label = "LSTM"
model = {{ cell = "lstm", hidden_size = 8 }}
"""


def test_reproduce_draws_recalled_patterns_for_spatial_tasks(tmp_path, capsys):
    from longrnn.cli import main

    sweep_file = tmp_path / "tiny_spatial.toml"
    sweep_file.write_text(SPATIAL_SWEEP.format(root=tmp_path))
    assert main(["reproduce", str(sweep_file), "--quiet"]) == 0
    text = (tmp_path / "page.md").read_text()
    assert "4 of 4 runs finished" in text and "page_recall.png" in text
    assert (tmp_path / "page_recall.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sweep_whose_width_does_not_fit_a_lattice_fails_before_its_first_run(tmp_path, capsys):
    """hidden_size is the state's width everywhere: with one channel on the 4x4 lattice it can only be 16,
    and the sweep says so once, naming the run, before any run starts."""
    from longrnn.cli import main

    sweep_file = tmp_path / "tiny_spatial.toml"
    text = SPATIAL_SWEEP.format(root=tmp_path).replace('hidden_size = 32', 'hidden_size = 32, channels = 1')
    sweep_file.write_text(text)  # fits copy's 1-D lattice (32 sites), not the 4x4 one
    assert main(["reproduce", str(sweep_file), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "run 'spatial_copy T=3' × 'conv unitary': hidden_size 32 does not fit the lattice 4x4" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_recall_pictures_show_the_seed_best_on_validation(tmp_path):
    from longrnn import runs
    from longrnn.experiment.sweep import load_sweep
    from longrnn.reporting.recall_plot import _best_on_validation

    sweep_file = tmp_path / "tiny_spatial.toml"
    sweep_file.write_text(SPATIAL_SWEEP.format(root=tmp_path).replace("seeds = [0]", "seeds = [0, 1, 2]"))
    sweep = load_sweep(sweep_file)
    for run in sweep.runs:
        run_dir = Path(run.config.out) / run.config.run_name()
        run_dir.mkdir(parents=True)
        accuracy = {0: 0.6, 1: 0.9, 2: 0.7}[run.config.train.seed]
        runs.write_json(run_dir / runs.SUMMARY, {"main_metric": "accuracy", "higher_is_better": True,
                                                 "validation": {"accuracy": accuracy}, "test": None,
                                                 "status": "finished", "baseline": {}, "steps": 1,
                                                 "seed": run.config.train.seed,
                                                 "wall_time_s": 1.0})
        if run.config.train.seed != 2 or run.variant_label == "LSTM":
            (run_dir / runs.MODEL).write_bytes(b"")  # weights present
    config, _ = _best_on_validation(sweep, "spatial_copy T=3", "conv unitary")
    assert config.train.seed == 1
    (Path(config.out) / config.run_name() / runs.MODEL).unlink()  # the best seed's weights are gone
    config, _ = _best_on_validation(sweep, "spatial_copy T=3", "conv unitary")
    assert config.train.seed == 0  # seed 2 has no weights either
