"""Long sequences read chunk by chunk (tasks/streaming.py) and scored that way (training/evaluate.py)."""

import json

import pytest
import torch

from longrnn.bench.memory import peak_bytes
from longrnn.models import SequenceModel
from longrnn.tasks import make_task
from longrnn.tasks.streaming import NOISE_BLOCK, noise, plan_rows
from longrnn.training.evaluate import evaluate, evaluate_streaming
from longrnn.training.memup import MemUPModel, MLPPredictor

STREAMING = [("copy", {}), ("copy", {"variable_delay": True}), ("copy", {"recall": 3}), ("copy_first", {}),
             ("adding", {}), ("adding", {"variant": "rplrnn"}), ("multiplication", {})]


def chunked(task, plan, bounds):
    parts = [task.window(plan, a, b) for a, b in zip(bounds, bounds[1:])]
    x = torch.cat([p[0] for p in parts], 1)
    y = torch.cat([p[1] for p in parts], 1) if task.readout == "all" else parts[-1][1]
    return x, y


@pytest.mark.parametrize(("name", "options"), STREAMING)
def test_a_plan_gives_the_same_sequences_whatever_the_chunks_and_the_rows(name, options):
    task = make_task(name, seq_len=50, **options)
    plan = task.plan(6, torch.Generator().manual_seed(1))
    x, y = task.window(plan, 0, task.seq_len)
    cuts = torch.Generator().manual_seed(2)
    for _ in range(4):  # random chunkings
        inner = sorted(torch.randperm(task.seq_len - 1, generator=cuts)[:5].add(1).tolist())
        xc, yc = chunked(task, plan, [0, *inner, task.seq_len])
        assert torch.equal(xc, x) and torch.equal(yc, y)
    x2, y2 = task.window(plan_rows(plan, slice(2, 5)), 0, task.seq_len)
    assert torch.equal(x2, x[2:5]) and torch.equal(y2, y[2:5])
    with pytest.raises(ValueError, match="window"):
        task.window(plan, 10, 10)


@pytest.mark.parametrize("options", [{}, {"variable_delay": True}])
def test_copy_plans_draw_exactly_what_sample_draws(options):
    task = make_task("copy", seq_len=30, **options)
    x, y = task.sample(9, torch.Generator().manual_seed(5))
    xw, yw = task.window(task.plan(9, torch.Generator().manual_seed(5)), 0, task.seq_len)
    assert torch.equal(x, xw) and torch.equal(y, yw)


def test_copy_draws_the_sequences_it_drew_before_it_could_stream():
    """Tokens and targets of the pre-streaming `Copy.sample` for this seed: the fixed sets, and so every
    committed copy result, are unchanged."""
    task = make_task("copy", seq_len=4, variable_delay=True, recall=3)
    x, y = task.sample(3, torch.Generator().manual_seed(0))
    assert x.argmax(-1).tolist() == [[4, 7, 5, 8, 8, 8, 9, 8, 8, 8], [0, 3, 3, 8, 9, 8, 8, 8, 8, 8],
                                     [3, 7, 1, 8, 8, 9, 8, 8, 8, 8]]
    assert y.tolist() == [[8, 8, 8, 8, 8, 8, 8, 4, 7, 5], [8, 8, 8, 8, 8, 0, 3, 3, 8, 8],
                          [8, 8, 8, 8, 8, 8, 3, 7, 1, 8]]


def test_noise_is_the_same_across_block_boundaries_and_differs_between_sequences():
    keys = torch.tensor([3, 4])
    whole = noise(keys, 0, 2 * NOISE_BLOCK + 5)
    assert torch.equal(noise(keys, NOISE_BLOCK - 3, NOISE_BLOCK + 7), whole[:, NOISE_BLOCK - 3 : NOISE_BLOCK + 7])
    assert not torch.equal(whole[0], whole[1])
    assert abs(float(whole.mean())) < 0.05 and abs(float(whole.std()) - 1) < 0.05
    u = noise(keys, 0, 1000, kind="uniform")
    assert float(u.min()) >= 0 and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.03


def test_copy_first_and_adding_windows_hold_their_targets():
    task = make_task("copy_first", seq_len=20)
    plan = task.plan(4, torch.Generator().manual_seed(0))
    x, y = task.window(plan, 0, 20)
    assert torch.equal(x[:, 0], y)
    task = make_task("adding", seq_len=20)
    x, y = task.window(task.plan(4, torch.Generator().manual_seed(0)), 0, 20)
    assert torch.equal(x[..., 1].sum(1), torch.full((4,), 2.0))
    assert torch.allclose((x[..., 0] * x[..., 1]).sum(1, keepdim=True), y)


def model_for(task, cell="lstm"):
    torch.manual_seed(0)
    return SequenceModel(cell, task.input_size, 8, task.output_size, readout=task.readout)


@pytest.mark.parametrize("options", [{}, {"variable_delay": True}])
def test_streamed_copy_scores_equal_the_in_memory_ones(options):
    task = make_task("copy", seq_len=40, validation_size=30, **options)
    model = model_for(task)
    whole = evaluate(model, task, "validation", batch_size=7)
    assert not task.streamed("validation")
    streamed = evaluate_streaming(model, task, task.fixed_plan("validation"), batch_size=11, chunk_len=9)
    assert streamed.keys() == whole.keys()
    for name in whole:
        assert streamed[name] == pytest.approx(whole[name], rel=1e-5)
    chunked_in_memory = evaluate(model, task, "validation", batch_size=7, chunk_len=9)
    assert chunked_in_memory == pytest.approx(whole, rel=1e-5)


def test_streamed_last_step_scores_equal_the_in_memory_ones():
    task = make_task("copy_first", seq_len=30)
    model = model_for(task, "brc")
    plan = task.plan(20, torch.Generator().manual_seed(3))
    x, y = task.window(plan, 0, task.seq_len)
    with torch.no_grad():
        y_pred = model(x)[0]
    expected = {"loss": float(task.loss(y_pred, y)), **task.metrics(y_pred, y)}
    streamed = evaluate_streaming(model, task, plan, batch_size=6, chunk_len=7)
    assert streamed == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("readout", ["all", "last"])
def test_a_memup_model_reads_chunks_as_it_reads_the_whole_sequence(readout):
    torch.manual_seed(0)
    memory = SequenceModel("gru", 3, 6, 2, readout=readout)
    model = MemUPModel(memory, MLPPredictor(6, 3, 2, hidden=8, context_len=4), chunk_len=1000)
    x = torch.randn(2, 23, 3)
    whole = model(x)[0]
    carry, outputs = None, []
    for part in x.split(5, dim=1):
        y, carry = model.forward_chunk(part, carry)
        outputs.append(y)
    got = torch.cat(outputs, 1) if readout == "all" else outputs[-1]
    assert torch.allclose(got, whole, atol=1e-6)


def streaming_peak(seq_len, chunk_len=200):
    task = make_task("copy", seq_len=seq_len, validation_size=8)
    model, plan = model_for(task), task.plan(8, torch.Generator().manual_seed(0))
    return peak_bytes(lambda: evaluate_streaming(model, task, plan, batch_size=8, chunk_len=chunk_len))


def test_streamed_evaluation_memory_does_not_grow_with_the_length_but_in_memory_evaluation_does():
    short, long = streaming_peak(2_000), streaming_peak(32_000)
    assert long < 1.1 * short
    assert streaming_peak(2_000, chunk_len=800) > 2 * short  # the count can tell: chunks are what it holds
    task = make_task("copy", seq_len=2_000, validation_size=8)
    model = model_for(task)
    in_memory = peak_bytes(lambda: evaluate(model, task, "validation", batch_size=8))
    assert in_memory > 5 * short  # the whole set and its outputs


def test_large_fixed_sets_are_streamed_and_small_ones_held():
    assert not make_task("copy", seq_len=300).streamed("test")
    task = make_task("copy", seq_len=5000)
    assert task.streamed("test") and task.streamed("validation")
    assert task.baseline("test") == task.expected_baseline()
    assert not make_task("scattered_copy", seq_len=100_000).streamed("test")  # its plan grows with T
    small = make_task("copy_first", seq_len=1000)
    assert not small.streamed("test") and small.baseline("test") != small.expected_baseline()
    assert make_task("copy_first", seq_len=10_000).streamed("test")


def test_eval_scores_a_run_over_a_ladder_of_lengths_streaming_the_long_ones(tmp_path, capsys, monkeypatch):
    import json

    import longrnn.tasks.base
    from longrnn.cli import main

    assert main(["train", "--task", "copy", "--seq-len", "10", "--set", "task.options.recall=2", "--cell", "gru",
                 "--hidden-size", "8", "--steps", "4", "--eval-every", "2", "--batch-size", "4", "--threads", "1",
                 "--quiet", "--out", str(tmp_path), "--name", "run"]) == 0
    capsys.readouterr()
    run = str(tmp_path / "run")
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_ABOVE_VALUES", 20 * 50 * 13)  # T=50 and more: streamed
    assert main(["eval", run, "--seq-len", "10", "200", "--set-size", "20", "--chunk-len", "64", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["runs"]
    assert [r["seq_len"] for r in results] == [10, 200]
    long = results[1]
    assert long["baseline"] == pytest.approx({"ce": 2 * 2.0794415 / 204, "accuracy": 0.125})  # streamed: expected
    assert 0 <= long["test"]["accuracy"] <= 1 and long["test"]["loss"] == long["test"]["ce"]
    assert main(["eval", run, "--seq-len", "10", "200", "--set-size", "20", "--split", "test",
                 "--plot", str(tmp_path / "length.png")]) == 0
    out = capsys.readouterr().out
    assert "| T=10 | T=200 |" in out and "| memoryless baseline | " in out
    assert (tmp_path / "length.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", run, "--set-size", "20", "--set", "task.options.variable_delay=true", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["test"] != results[0]["test"]  # other delays
    for bad, word in ((["--seq-len", "10", "--plot", "p.png"], "--plot"), (["--set-size", "0"], "--set-size"),
                      (["--chunk-len", "0"], "--chunk-len"), (["--set", "train.lr=1"], "task options only"),
                      (["--set", "task.options.recall=x"], "recall")):
        assert main(["eval", run, *bad]) == 2
        assert word in capsys.readouterr().err


@pytest.mark.parametrize("name", ["copy", "copy_first"])
def test_streamed_truncated_bptt_gives_the_gradient_of_truncated_bptt(name):
    from longrnn.training.bptt import streamed_tbptt_backward, tbptt_loss

    task = make_task(name, seq_len=23)
    model = model_for(task, "gru").double()
    plan = task.plan(5, torch.Generator().manual_seed(0))
    x, y = task.window(plan, 0, task.seq_len)
    loss = tbptt_loss(model, task, x.double(), y.double() if y.is_floating_point() else y, 7)
    loss.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    double = {k: v.double() if v.is_floating_point() else v for k, v in plan.items()}
    streamed = streamed_tbptt_backward(model, _Double(task), double, 7)
    assert float(streamed) == pytest.approx(float(loss.detach()), rel=1e-10)
    for got, want in zip((p.grad for p in model.parameters()), expected):
        assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


class _Double:
    """A task whose windows are float64 (the gradient comparison above runs in double precision)."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def window(self, plan, start, stop):
        x, y = self.task.window(plan, start, stop)
        return x.double(), y.double() if y.is_floating_point() else y


def test_streamed_truncated_bptt_memory_does_not_grow_with_the_length():
    from longrnn.training.bptt import streamed_tbptt_backward, tbptt_loss

    def peaks(seq_len):
        task = make_task("copy", seq_len=seq_len)
        model = model_for(task, "gru")
        plan = task.plan(4, torch.Generator().manual_seed(0))
        streamed = peak_bytes(lambda: streamed_tbptt_backward(model, task, plan, 100))
        x, y = task.window(plan, 0, task.seq_len)
        held = peak_bytes(lambda: tbptt_loss(model, task, x, y, 100).backward())
        return streamed, held

    (short, held_short), (long, held_long) = peaks(1_000), peaks(4_000)
    assert long < 1.1 * short
    assert held_long > 2.5 * held_short  # the in-memory loss holds every chunk's outputs


def test_a_truncated_bptt_run_trains_alike_whether_its_batches_are_built_whole_or_in_chunks(tmp_path, monkeypatch):
    import longrnn.tasks.base
    from longrnn.runs.config import RunConfig
    from longrnn.training import train

    def run(name):
        config = RunConfig()
        config.task.name, config.task.seq_len, config.task.options = "copy", 30, {"recall": 3}
        config.model.cell, config.model.hidden_size = "gru", 8
        t = config.train
        t.trainer, t.tbptt_len, t.steps, t.eval_every, t.batch_size, t.threads = "tbptt", 9, 6, 3, 4, 1
        config.out, config.name = str(tmp_path), name
        return train(config, quiet=True)

    whole = run("whole")
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    assert make_task("copy", seq_len=30, recall=3).streams_batch(4)
    chunked = run("chunked")
    assert chunked["test"] == pytest.approx(whole["test"], rel=1e-5)
    losses = [[json.loads(line).get("train_loss") for line in (tmp_path / n / "metrics.jsonl").read_text().splitlines()]
              for n in ("whole", "chunked")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_the_memory_bench_measures_evaluation_and_names_a_child_that_died():
    import os

    from longrnn.bench.memory import _in_child, memory, memory_table
    from longrnn.runs.config import RunConfig

    config = RunConfig()
    config.task.name, config.task.options = "copy", {"validation_size": 8, "recall": 2}
    config.model.cell, config.model.hidden_size, config.train.threads = "gru", 4, 1
    rows = memory(config, [], [10], quiet=True, evaluation=True)
    assert [r["trainer"] for r in rows] == ["evaluation"] and rows[0]["seq_len"] == 14
    assert rows[0]["peak_mb"] >= rows[0]["training_mb"] >= 0
    died = {**_in_child(os._exit, 1), "trainer": "tbptt", "setting": 10}
    assert "died" in died["error"]
    assert "| tbptt | died |" in memory_table([died], "setup")


def test_diagnostic_inputs_of_a_streamed_set_build_only_their_first_steps():
    from longrnn.training.evaluate import first_fixed_sequences

    task = make_task("copy", seq_len=5000)
    assert task.streamed("validation")
    x = first_fixed_sequences(task, "validation", 3, steps=100)
    whole = task.window(plan_rows(task.fixed_plan("validation"), slice(0, 3)), 0, 100)[0]
    assert x.shape == (3, 100, task.input_size) and torch.equal(x, whole)
    small = make_task("copy", seq_len=30)
    assert torch.equal(first_fixed_sequences(small, "validation", 2, steps=7), small.validation_set()[0][:2, :7])
