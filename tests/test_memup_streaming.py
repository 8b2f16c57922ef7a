"""MemUP on streamed batches (training/memup_batch.py): the same targets and losses as on whole sequences,
resumable mid-sequence, and memory that does not grow with the sequence length."""

from __future__ import annotations

import pytest
import torch

import longrnn.tasks.base
from longrnn.errors import UsageError
from longrnn.models import SequenceModel
from longrnn.tasks import make_task
from longrnn.training import memup_targets
from longrnn.training.memup import EMADetector, LocalDetector, MemUP, MemUPModel, MLPPredictor

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def memup_for(task, selection="future", current_step=False, detector="ema", context_len=2, chunk_len=12, **kw):
    torch.manual_seed(0)
    memory = SequenceModel("gru", task.input_size, 8, task.output_size, readout=task.readout).double()
    model = MemUPModel(memory, MLPPredictor(8, task.input_size, task.output_size, 16, context_len), chunk_len)
    model = model.double()
    if detector == "ema":
        scorer = EMADetector(model, task, decay=0.5)
    else:
        scorer = LocalDetector(task, task.input_size, task.output_size, 16, context_len,
                               generator=torch.Generator().manual_seed(1)).to("cpu", torch.float64)
    return MemUP(model, task, batch_size=3, rollout=4, targets=3, predict_every=2, detector=scorer,
                 current_step=current_step, selection=selection, **kw)


class Float64:
    """A task whose inputs come in float64, the models' precision here, and whose whole sequences are its
    plan's (copy_first's `sample` is another draw than its plan: tasks/base.py)."""

    def __init__(self, task):
        self.task = task

    def __getattr__(self, name):
        return getattr(self.task, name)

    def sample(self, batch_size, generator):
        return self.window(self.plan(batch_size, generator), 0, self.seq_len)

    def window(self, plan, start, stop):
        x, y = self.task.window(plan, start, stop)
        return x.double(), y


def run(memup, steps, generator=None):
    """Losses of ``steps`` optimisation steps (plain SGD: no optimizer state) drawing batches from ``generator``."""
    optimizer = torch.optim.SGD(memup.parameters(), lr=0.1)
    generator, losses = generator or torch.Generator().manual_seed(5), []
    for _ in range(steps):
        loss = memup.loss(generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        memup.advance()
        losses.append(loss.item())
    return losses


def selections(monkeypatch):
    chosen = []
    original = memup_targets.select_targets

    def recording(scores, scored, steps, k, generator=None, positions=None):
        idx, valid = original(scores, scored, steps, k, generator, positions)
        where = positions if positions is not None else torch.arange(scores.shape[1]).expand(len(scores), -1)
        chosen.append((torch.gather(where, 1, idx.flatten(1)).view_as(idx), valid))  # steps, not columns
        return idx, valid

    monkeypatch.setattr(memup_targets, "select_targets", recording)
    return chosen


@pytest.mark.parametrize("name, options", [("copy", {"recall": 3}), ("copy_first", {})])
@pytest.mark.parametrize("selection, current_step", [("future", False), ("future", True), ("global", False)])
def test_a_streamed_batch_selects_the_same_targets_and_gives_the_same_losses(name, options, selection, current_step,
                                                                              monkeypatch):
    task = Float64(make_task(name, seq_len=40, **options))  # 3 batches of 46 (40) steps; chunks of 12
    chosen = selections(monkeypatch)
    held = run(memup_for(task, selection, current_step), 30)
    held_chosen = list(chosen)
    chosen.clear()
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    memup = memup_for(task, selection, current_step)
    streamed = run(memup, 30)
    assert memup.batch.streamed and memup.batches == 3
    assert streamed == pytest.approx(held, rel=1e-9)
    assert len(chosen) == len(held_chosen)
    for (a, valid_a), (b, valid_b) in zip(held_chosen, chosen):
        assert torch.equal(valid_a, valid_b) and torch.equal(a[valid_a], b[valid_b])


def test_a_streamed_batch_resumes_from_a_checkpoint_in_the_middle_of_a_sequence(monkeypatch, tmp_path):
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    task = Float64(make_task("copy", seq_len=40, recall=3))
    whole = run(memup_for(task), 26)

    first, generator = memup_for(task), torch.Generator().manual_seed(5)
    head = run(first, 19, generator)  # the second batch's 7th rollout: in its third chunk
    assert first.batches == 2 and first.batch.chunk == 2
    state = {"memup": first.state_dict(), "model": first.model.state_dict(), "generator": generator.get_state()}
    torch.save(state, tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    second = memup_for(task)
    second.model.load_state_dict(saved["model"])
    second.load_state_dict(saved["memup"])
    assert second.batch.streamed and second.batch.chunk == 2
    tail = run(second, 7, torch.Generator().set_state(saved["generator"]))
    assert head + tail == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("name, options", [("copy", {"recall": 3}), ("copy_first", {})])
def test_the_local_detector_scores_and_learns_chunk_by_chunk(name, options, monkeypatch):
    """It fits on the pairs in view: the chunk's and the suffix top-K's (copy_first scores its last step
    alone, so most chunks have none of their own)."""
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    task = Float64(make_task(name, seq_len=40, **options))
    memup = memup_for(task, detector="local")
    before = [p.clone() for p in memup.detector.net.parameters()]
    losses = run(memup, 15)
    assert memup.batch.streamed and all(loss == loss for loss in losses)
    assert not all(torch.equal(a, b) for a, b in zip(before, memup.detector.net.parameters()))


def test_sampled_targets_are_refused_on_a_streamed_batch_before_training_and_for_a_curriculum_stage(monkeypatch):
    from longrnn.runs.config import RunConfig, apply_overrides
    from longrnn.training.trainer import check_run

    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 20_000)  # copy, batch 4: beyond 263 steps
    task = Float64(make_task("copy", seq_len=400, recall=3))
    memup = memup_for(task, temperature=0.5)
    with pytest.raises(UsageError, match=r"--memup-temperature 0.5 .* 3 sequences of 406 steps is too long to hold"):
        memup.loss(torch.Generator().manual_seed(0))
    base = ["task.name=copy", "train.trainer=memup", "train.batch_size=4", "train.memup_temperature=0.5",
            "train.steps=10"]
    check_run(apply_overrides(RunConfig(), [*base, "task.seq_len=100"]))  # held: sampled targets are fine
    with pytest.raises(UsageError, match=r"4 sequences of 420 steps \(a curriculum stage\)"):
        check_run(apply_overrides(RunConfig(), [*base, "task.seq_len=100", "train.curriculum=400:2"]))
    with pytest.raises(UsageError, match=r"4 sequences of 420 steps is too long"):
        check_run(apply_overrides(RunConfig(), [*base, "task.seq_len=400"]))


def test_streamed_memup_memory_does_not_grow_with_the_length_but_held_memup_memory_does(monkeypatch):
    from longrnn.bench.memory import peak_bytes

    def peak(seq_len):
        task = Float64(make_task("copy", seq_len=seq_len, recall=3))
        memup = memup_for(task, chunk_len=200)
        return peak_bytes(lambda: run(memup, 2))  # the first step scores the whole batch

    held_short, held_long = peak(1_000), peak(4_000)
    monkeypatch.setattr(longrnn.tasks.base, "STREAM_BATCH_ABOVE_VALUES", 10)
    short, long = peak(1_000), peak(4_000)
    assert long < 1.1 * short
    assert held_long > 2.5 * held_short  # the count can tell: whole sequences, their scores, the selection mask
