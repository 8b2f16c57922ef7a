"""MemUP (training/memup.py): target selection, detectors, truncated gradients, evaluation, training."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_memory import bytes_saved_for_backward
from longrnn.errors import UsageError
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig
from longrnn.tasks import make_task
from longrnn.tasks.copy import BLANK
from longrnn.training import memup as memup_module
from longrnn.training import memup_targets, train
from longrnn.training.build import build_model
from longrnn.training.memup import (
    EMADetector,
    LocalDetector,
    MemUP,
    MemUPModel,
    MLPPredictor,
    input_windows,
    prediction_steps,
    select_targets,
    take_steps,
)

FAST = settings(max_examples=60, deadline=None)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def memup_config(**train) -> RunConfig:
    config = RunConfig()
    config.task.name, config.task.seq_len = "copy", 10
    config.task.options = {"validation_size": 16, "test_size": 16}
    config.model.hidden_size, config.model.engine = 8, "eager"  # eager: no compile time in tests
    config.train.trainer = "memup"
    config.train.memup_hidden = 16
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def tiny_model(task, cell="lstm", context_len=1, chunk_len=1000) -> MemUPModel:
    memory = SequenceModel(cell, task.input_size, 6, task.output_size, readout=task.readout)
    return MemUPModel(memory, MLPPredictor(6, task.input_size, task.output_size, 12, context_len), chunk_len)


# --- target selection -----------------------------------------------------------------------------
@st.composite
def selection_case(draw):
    batch, time = draw(st.integers(1, 3)), draw(st.integers(1, 12))
    k = draw(st.integers(1, 6))
    scores = draw(st.permutations(range(batch * time)))  # distinct scores: a unique ranking
    scored = draw(st.lists(st.booleans(), min_size=batch * time, max_size=batch * time))
    steps = draw(st.lists(st.integers(0, time - 1), min_size=1, max_size=4))
    return batch, time, k, scores, scored, steps


@FAST
@given(selection_case(), st.integers(0, 2**16))
def test_select_targets_matches_a_brute_force_reference(case, seed):
    batch, time, k, scores, scored, steps = case
    u = torch.tensor(scores, dtype=torch.float32).reshape(batch, time)
    mask = torch.tensor(scored).reshape(batch, time)
    idx, valid = select_targets(u, mask, torch.tensor(steps), k, torch.Generator().manual_seed(seed))
    assert idx.shape == valid.shape == (batch, len(steps), k)
    for b in range(batch):
        for p, t in enumerate(steps):
            candidates = sorted((j for j in range(t, time) if mask[b, j]), key=lambda j: -u[b, j])
            chosen = idx[b, p].tolist()
            assert valid[b, p].all().item() == bool(candidates)
            if not candidates:
                continue
            assert chosen[: min(k, len(candidates))] == candidates[:k]  # the top K, best first
            assert set(chosen[len(candidates):]) <= set(candidates)  # padding repeats candidates


def test_padding_draws_every_remaining_candidate():
    u = torch.arange(10.0).unsqueeze(0)
    mask = torch.ones(1, 10, dtype=torch.bool)
    idx, _ = select_targets(u, mask, torch.tensor([7]), 200, torch.Generator().manual_seed(0))
    assert idx[0, 0, :3].tolist() == [9, 8, 7]
    assert set(idx[0, 0, 3:].tolist()) == {7, 8, 9}


def test_prediction_steps_every_f_and_at_the_end():
    assert prediction_steps(0, 20, 10) == [9, 19]
    assert prediction_steps(40, 25, 10) == [49, 59, 64]
    assert prediction_steps(5, 3, 10) == [7]
    assert prediction_steps(0, 4, 1) == [0, 1, 2, 3]
    assert prediction_steps(40, 25, 10, phase=0) == [40, 50, 60, 64]
    assert prediction_steps(40, 25, 10, phase=4) == [44, 54, 64]


@pytest.mark.parametrize("random_phase, phases", [(False, {4}), (True, {0, 1, 2, 3, 4})])
def test_random_phase_puts_prediction_steps_at_every_offset(monkeypatch, random_phase, phases):
    task = make_task("copy", seq_len=20)
    memup = MemUP(tiny_model(task), task, batch_size=2, rollout=10, targets=2, predict_every=5,
                  random_phase=random_phase)
    steps, real = [], memup_module.prediction_steps

    def spy(start, length, every, phase=None):
        out = real(start, length, every, phase)
        steps.extend(out[:-1])  # the rollout's last step is always in P
        return out

    monkeypatch.setattr(memup_module, "prediction_steps", spy)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        memup.loss(g)
        memup.advance()
    assert {step % 5 for step in steps} == phases  # rollouts start at multiples of 10


def test_input_windows_and_take_steps():
    x = torch.arange(2 * 6 * 1.0).reshape(2, 6, 1)
    w = input_windows(x, 3)
    assert w.shape == (2, 6, 3, 1)
    assert w[1, 4, :, 0].tolist() == [8.0, 9.0, 10.0]
    assert w[0, 0, :, 0].tolist() == [0.0, 0.0, 0.0]  # zeros before the start
    picked = take_steps(x, torch.tensor([[5, 0], [2, 2]]))
    assert picked[..., 0].tolist() == [[5.0, 0.0], [8.0, 8.0]]


# --- detectors ------------------------------------------------------------------------------------
def blank_predictor_model(task) -> MemUPModel:
    """A model whose predictor is sure of a blank at every step, whatever it sees."""
    model = tiny_model(task)
    last = model.predictor.head[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.fill_(-10.0)
        last.bias[BLANK] = 10.0
    return model


def test_ema_detector_scores_are_the_ema_models_step_losses_and_point_at_the_recall_steps():
    task = make_task("copy", seq_len=15)
    x, y = task.sample(4, torch.Generator().manual_seed(0))
    y_steps, scored = task.step_targets(y)
    detector = EMADetector(blank_predictor_model(task), task)
    u = detector.scores(x, y_steps, scored)
    recall = y_steps != BLANK
    assert u[~recall].max() < 1e-6  # a sure blank costs nothing where the target is a blank
    assert torch.allclose(u[recall], torch.full_like(u[recall], 20.0), atol=1e-3)  # CE of a 20-logit miss
    idx, _ = select_targets(u, scored, torch.tensor([0]), 10, torch.Generator())
    assert (take_steps(y_steps, idx[:, 0]) != BLANK).all()  # top-10 from t=0: exactly the recall steps


def test_ema_detector_masks_unscored_steps():
    task = make_task("adding", seq_len=12)
    x, y = task.sample(3, torch.Generator().manual_seed(0))
    y_steps, scored = task.step_targets(y)
    model = tiny_model(task)
    u = EMADetector(model, task).scores(x, y_steps, scored)
    assert torch.isinf(u[:, :-1]).all()
    expected = (model(x)[0] - y).pow(2).squeeze(1)
    assert torch.allclose(u[:, -1], expected.detach(), atol=1e-6)


def test_ema_update_is_an_exponential_moving_average():
    task = make_task("copy", seq_len=5)
    model = tiny_model(task)
    detector = EMADetector(model, task, decay=0.75, every=2)
    before = [p.clone() for p in detector.ema.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    detector.update(model, None)  # step 1 of 2: nothing yet
    assert all(torch.equal(a, b) for a, b in zip(detector.ema.parameters(), before))
    detector.update(model, None)
    for avg, old, new in zip(detector.ema.parameters(), before, model.parameters()):
        assert torch.allclose(avg, 0.75 * old + 0.25 * new)
        assert not avg.requires_grad


def test_local_detector_learns_that_only_the_recall_steps_are_uncertain():
    torch.manual_seed(0)
    task = make_task("copy", seq_len=20)
    detector = LocalDetector(task, task.input_size, task.output_size, 32, 12, lr=1e-2, samples=512,
                             generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    for _ in range(60):
        x, y = task.sample(16, g)
        detector.update(None, (x, *task.step_targets(y)))
    x, y = task.sample(16, g)
    y_steps, scored = task.step_targets(y)
    u = detector.scores(x, y_steps, scored)
    recall = y_steps != BLANK
    assert u[~recall].mean() < 0.2
    assert u[recall].mean() > 1.5  # no memory: recall stays near ln 8 = 2.08


# --- truncated gradients --------------------------------------------------------------------------
def test_the_gradient_reaches_back_only_r_steps_plus_the_target_predictions(monkeypatch):
    torch.manual_seed(0)
    task = make_task("copy", seq_len=40)  # 60 steps
    model = tiny_model(task)
    memup = MemUP(model, task, batch_size=3, rollout=7, targets=3, predict_every=3)
    chosen = []

    def recording(*args, **kwargs):
        chosen.append(select_targets(*args, **kwargs))
        return chosen[-1]

    monkeypatch.setattr(memup_targets, "select_targets", recording)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # three rollouts: the carried state now depends on steps 0..20
        memup.loss(g)
        memup.advance()
    batch = memup.batch
    x = batch.x = batch.x.clone().requires_grad_(True)
    batch.uncertainty = torch.rand(batch.uncertainty.shape)  # spread targets over the whole future
    memup.selector.start(*batch.candidates())
    memup.loss(g).backward()
    touched = set((x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist())
    targets = set(chosen[-1][0].flatten().tolist())
    rollout = set(range(21, 28))
    assert rollout <= touched  # every rollout step gets gradient
    assert touched <= rollout | targets  # nothing before the rollout; after it only the targets' inputs
    assert any(k >= 28 for k in targets) and touched & {k for k in targets if k >= 28}


# --- model and evaluation -------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_evaluation_predicts_y_k_from_m_k_the_same_in_any_chunking(cell):
    torch.manual_seed(0)
    task = make_task("copy", seq_len=17)
    whole = tiny_model(task, cell, context_len=4, chunk_len=1000)
    chunked = tiny_model(task, cell, context_len=4, chunk_len=6)
    chunked.load_state_dict(whole.state_dict())
    x, _ = task.sample(3, torch.Generator().manual_seed(0))
    y_whole, _ = whole(x)
    assert y_whole.shape == (3, task.seq_len, task.output_size)
    assert torch.allclose(y_whole, chunked(x)[0], atol=1e-6)
    m, _ = memup_module.memory_outputs(whole.memory, x)
    k = 9
    direct = whole.predictor(m[:, k], input_windows(x, 4)[:, k])
    assert torch.allclose(y_whole[:, k], direct, atol=1e-6)


def test_last_step_readout_returns_one_prediction_per_sequence():
    task = make_task("adding", seq_len=30)
    model = tiny_model(task, chunk_len=7)
    x, _ = task.sample(4, torch.Generator())
    y, _ = model(x)
    assert y.shape == (4, 1)
    assert torch.allclose(y, tiny_model_all_steps(model, x)[:, -1], atol=1e-6)


def tiny_model_all_steps(model, x):
    return model.step_predictions(x)[0]


def test_build_model_wraps_any_registered_cell():
    for cell in ("lstm", "gru", "irnn"):
        config = memup_config()
        config.model.cell, config.model.engine = cell, None
        task = make_task("copy", seq_len=10)
        model = build_model(config, task)
        assert isinstance(model, MemUPModel) and model.memory.cell_name == cell


def test_bad_memup_settings_are_usage_errors(tmp_path):
    for key, value in [("memup_predictor", "cnn"), ("memup_detector", "oracle"), ("memup_rollout", 0),
                       ("memup_ema_decay", 1.0), ("memup_targets", -1)]:
        config = memup_config(**{key: value})
        config.out = str(tmp_path)
        with pytest.raises(UsageError,
                           match=key.replace("memup_", "") if key.endswith(("predictor", "detector")) else key):
            train(config, quiet=True)


# --- training -------------------------------------------------------------------------------------
@pytest.mark.parametrize("detector, predictor", [("ema", "mlp"), ("local", "local_rnn")])
def test_memup_run_writes_the_usual_run_directory(tmp_path, detector, predictor):
    config = memup_config(steps=6, eval_every=3, batch_size=4, memup_rollout=8, memup_detector=detector,
                          memup_predictor=predictor, memup_context_len=3, memup_local_samples=32)
    config.out = str(tmp_path)
    summary = train(config, quiet=True)
    assert summary["status"] == "finished" and summary["steps"] == 6
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert {"config.toml", "metrics.jsonl", "summary.json", "model.pt", "checkpoint.pt"} <= {
        p.name for p in tmp_path.glob("*/*")
    }


def crash_and_resume_match(tmp_path, monkeypatch, trainer_class=MemUP, **train_options) -> None:
    """Train 12 steps straight; then the same run killed at step 10 (between the checkpoints of steps 8
    and 12, by ``trainer_class.advance``) and resumed: same test scores and metrics records."""
    def run(out, resume=False):
        config = memup_config(steps=12, eval_every=4, batch_size=4, memup_rollout=7, **train_options)
        config.out, config.name = str(out), "r"
        return train(config, resume=resume, quiet=True)

    straight = run(tmp_path / "a")
    advance, calls = trainer_class.advance, []

    def crash_at_step_10(self):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        advance(self)

    monkeypatch.setattr(trainer_class, "advance", crash_at_step_10)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b")
    monkeypatch.setattr(trainer_class, "advance", advance)
    resumed = run(tmp_path / "b", resume=True)
    assert resumed["steps"] == straight["steps"] == 12
    assert resumed["test"] == straight["test"]

    def records(d):
        lines = (tmp_path / d / "r" / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in ("time", "peak_memory_mb")} for x in lines]

    assert records("a") == records("b")


def test_memup_resume_continues_like_an_uninterrupted_run(tmp_path, monkeypatch):
    crash_and_resume_match(tmp_path, monkeypatch)


@pytest.mark.slow
def test_memup_learns_a_dependency_three_rollouts_long(tmp_path):
    """copy_first at T=60 with rollouts of 20 steps: x_0 must be carried across two detached boundaries."""
    config = RunConfig()
    config.task.name, config.task.seq_len = "copy_first", 60
    config.task.options = {"validation_size": 200, "test_size": 200}
    config.model.hidden_size, config.model.forget_init = 64, "chrono:60"
    config.train.trainer, config.train.steps, config.train.eval_every = "memup", 1000, 100
    config.train.batch_size, config.train.lr, config.train.threads = 32, 3e-3, 1
    config.train.memup_rollout, config.train.memup_targets, config.train.memup_predict_every = 20, 1, 5
    config.train.memup_hidden, config.train.diagnostics = 64, False
    config.out = str(tmp_path)
    summary = train(config, quiet=True)
    assert summary["baseline"]["mse"] > 0.9  # the memoryless predictor
    assert summary["test"]["mse"] < 0.2


@pytest.mark.slow
def test_memup_learns_a_small_copy_task_at_delay_100(tmp_path):
    """copy of 2 symbols (8 kinds) after 100 blank steps, rollouts of r = 20: the symbols cross 5 detached
    boundaries. A length curriculum (1,000 batches at delay 10, 300 at 50) teaches the writing first; K = 2,
    the number of informative targets. About 20 s on one core (delay 200 needs 4,000 steps: a minute)."""
    config = RunConfig()
    config.task.name, config.task.seq_len = "copy", 100
    config.task.options = {"recall": 2, "validation_size": 200, "test_size": 500}
    config.model.hidden_size = 64
    t = config.train
    t.trainer, t.steps, t.eval_every, t.batch_size, t.lr, t.threads = "memup", 2500, 500, 32, 3e-3, 1
    t.memup_rollout, t.memup_targets, t.memup_context_len = 20, 2, 4
    t.memup_current_step, t.memup_random_phase, t.diagnostics = True, True, False
    t.curriculum = "10:1000,50:300"
    config.out = str(tmp_path)
    summary = train(config, quiet=True)
    assert summary["baseline"]["accuracy"] < 0.2  # the memoryless predictor: 1/8
    assert summary["test"]["accuracy"] > 0.9


# --- memory ---------------------------------------------------------------------------------------
def saved_bytes_of_one_step(trainer: str, seq_len: int) -> int:
    """Bytes of the activations autograd keeps for backward in one training step (views counted by size)."""
    from longrnn.training.bptt import bptt_loss

    torch.manual_seed(0)
    config = memup_config(batch_size=4, memup_rollout=20, memup_chunk_len=500)
    config.task.seq_len, config.train.trainer = seq_len, trainer
    task = make_task("copy", seq_len=seq_len)
    model = build_model(config, task)
    memup = MemUP.from_config(model, task, config.train) if trainer == "memup" else None
    g = torch.Generator().manual_seed(0)
    if memup is not None:
        memup.loss(g)  # the first call also runs the detector (no graph) over the whole sequences
    return bytes_saved_for_backward(
        lambda: memup.loss(g) if memup is not None else bptt_loss(model, task, *task.sample(4, g)))


def test_memup_graph_memory_does_not_grow_with_the_sequence_but_bptt_does():
    memup_short, memup_long = saved_bytes_of_one_step("memup", 1000), saved_bytes_of_one_step("memup", 8000)
    assert memup_long < 1.05 * memup_short
    bptt_short, bptt_long = saved_bytes_of_one_step("bptt", 100), saved_bytes_of_one_step("bptt", 800)
    assert bptt_long > 5 * bptt_short  # the check can tell: full BPTT keeps every step


def test_memory_bench_pieces(tmp_path):
    from longrnn.bench.memory import measure, memory, memory_table

    config = memup_config(batch_size=4, memup_rollout=10)
    d = {s: {k: v for k, v in table.items() if v is not None} for s, table in config.to_dict().items()
         if s in ("task", "model", "train")}
    row = measure(d, steps=2)  # in this process; the CLI runs each configuration in a child
    assert row["trainer"] == "memup" and row["seq_len"] == 30 and row["peak_mb"] >= row["training_mb"] >= 0
    rows = [{**row, "setting": 10}, {**row, "trainer": "bptt", "setting": 20}]
    table = memory_table(rows, "setup")
    assert "| memup |" in table and "| bptt |" in table and "T=20" in table
    with pytest.raises(UsageError, match="trainer"):
        memory(config, ["bppt"], [100])


def test_cli_trains_and_evaluates_with_memup(tmp_path, capsys):
    import json

    from longrnn.cli import main

    flags = ["train", "--task", "tmaze", "--seq-len", "30", "--trainer", "memup", "--hidden-size", "8",
             "--memup-rollout", "10", "--memup-hidden", "16", "--engine", "eager", "--steps", "4", "--eval-every", "2",
             "--set", "task.validation_size=8", "--set", "task.test_size=8", "--out", str(tmp_path), "--quiet"]
    assert main(flags) == 0
    run_dir = next(tmp_path.iterdir())
    capsys.readouterr()
    assert main(["eval", str(run_dir)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0.0 <= scores["test"]["accuracy"] <= 1.0
    assert main(["train", *flags[1:-1], "--memup-detector", "oracle"]) == 2
    assert "memup_detector" in capsys.readouterr().err


@pytest.mark.parametrize("length", [1, 4, 20])
def test_windows_at_given_steps_are_those_of_the_whole_sequence(length):
    from longrnn.training.memup import input_windows, take_steps, windows_at

    x = torch.randn(3, 17, 4)
    idx = torch.randint(0, 17, (3, 5, 2), generator=torch.Generator().manual_seed(length))
    assert torch.equal(windows_at(x, idx, length), take_steps(input_windows(x, length), idx))
    rows, steps = torch.tensor([2, 0, 2, 1]), torch.tensor([0, 16, 3, 9])  # any (sequence, step) pairs
    assert torch.equal(windows_at(x, steps, length, rows=rows), input_windows(x, length)[rows, steps])
