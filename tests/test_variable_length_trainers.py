"""Variable-length batches under every trainer (full and truncated BPTT, teacher forcing, MemUP): the loss
and gradients of a padded batch equal the sum over its sequences run alone, as the trainer runs an
equal-length batch (float64)."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence

from longrnn.cells import available as available_cells
from longrnn.models import SequenceModel
from longrnn.tasks.base import Task
from longrnn.training.bptt import bptt_loss, tbptt_loss
from longrnn.training.memup import EMADetector, MemUP, MemUPModel, MLPPredictor, prediction_steps
from longrnn.training.teacher_forcing import teacher_forcing_loss

LENGTHS = [5, 2, 7, 1, 6]


class SumTask:
    """A task whose loss sums over sequences, so a batch's loss is the sum of its sequences' losses."""

    def __init__(self, readout):
        self.readout = readout

    def loss(self, y_pred, y):
        if self.readout == "last":
            return F.cross_entropy(y_pred, y, reduction="sum")
        return y_pred.square().sum()  # the zeros after each sequence's end add nothing


def setup(cell, readout):
    torch.manual_seed(0)
    model = SequenceModel(cell, 3, 8, 2, num_layers=2, readout=readout).double()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randn(n, 3, generator=g, dtype=torch.float64) for n in LENGTHS]
    labels = torch.tensor([0, 1, 1, 0, 1])
    return model, seqs, labels


def loss_and_grads(model, fn):
    model.zero_grad()
    loss = fn()
    loss.backward()
    return loss.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("trainer", ["bptt", "tbptt"])
@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_a_padded_batch_trains_as_its_sequences_alone(cell, readout, trainer):
    model, seqs, labels = setup(cell, readout)
    task = SumTask(readout)

    def run(x, y):
        return bptt_loss(model, task, x, y) if trainer == "bptt" else tbptt_loss(model, task, x, y, k=3)

    alone = [loss_and_grads(model, lambda s=s, i=i: run(s.unsqueeze(0), labels[i : i + 1]))
             for i, s in enumerate(seqs)]
    loss, grads = loss_and_grads(model, lambda: run(pack_sequence(seqs, enforce_sorted=False), labels))
    torch.testing.assert_close(loss, sum(a[0] for a in alone), rtol=1e-12, atol=1e-12)
    for i, got in enumerate(grads):
        torch.testing.assert_close(got, sum(a[1][i] for a in alone), rtol=1e-9, atol=1e-10)


def test_a_chunking_bug_would_fail():
    """Chunks aligned to the batch's longest sequence, not each sequence's own start, give other gradients
    (here: the padded batch run through the equal-length path with its padding read as input)."""
    model, seqs, labels = setup("lstm", "last")
    task = SumTask("last")
    packed = pack_sequence(seqs, enforce_sorted=False)
    padded = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)[0]
    right, _ = loss_and_grads(model, lambda: tbptt_loss(model, task, packed, labels, k=3))
    wrong, _ = loss_and_grads(model, lambda: tbptt_loss(model, task, padded, labels, k=3))
    assert not torch.allclose(right, wrong)


@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_teacher_forcing_on_windows_of_different_lengths(cell):
    torch.manual_seed(0)
    model = SequenceModel(cell, 3, 8, 3, readout="all").double()
    _, seqs, _ = setup(cell, "all")
    task = SumTask("all")
    task.input_size = task.output_size = 3

    def run(x, y):
        return teacher_forcing_loss(model, task, x, y, interval=3, alpha=0.2)

    def targets(n):
        return torch.zeros(1, n, 3, dtype=torch.float64)  # the loss reads predictions only

    alone = [loss_and_grads(model, lambda s=s: run(s.unsqueeze(0), targets(len(s)))) for s in seqs]
    batch_targets = torch.zeros(len(seqs), max(LENGTHS), 3, dtype=torch.float64)
    loss, grads = loss_and_grads(model, lambda: run(pack_sequence(seqs, enforce_sorted=False), batch_targets))
    torch.testing.assert_close(loss, sum(a[0] for a in alone), rtol=1e-12, atol=1e-12)
    for i, got in enumerate(grads):
        torch.testing.assert_close(got, sum(a[1][i] for a in alone), rtol=1e-9, atol=1e-10)


class LastStepTask(Task):
    """Classes read at each sequence's last step, for MemUP (cross-entropy per step)."""

    readout, input_size, output_size, seq_len = "last", 3, 2, max(LENGTHS)

    def step_loss(self, y_hat, y_steps):
        return F.cross_entropy(y_hat.reshape(-1, 2), y_steps.reshape(-1), reduction="none").view(y_steps.shape)


@pytest.mark.parametrize("cell", sorted(available_cells()))
def test_memup_on_sequences_of_different_lengths(cell):
    """Each rollout's mean loss times its (sequence, target) pairs, summed over rollouts, and its gradient:
    the padded batch equals its sequences alone (one target per sequence, so no random padding of the
    target lists); the evaluation path reads each sequence at its own last step."""
    torch.manual_seed(0)
    memory = SequenceModel(cell, 3, 8, 2, readout="last").double()
    model = MemUPModel(memory, MLPPredictor(8, 3, 2, hidden=16)).double()
    task, (_, seqs, labels) = LastStepTask(), setup(cell, "last")
    rollout, every = 3, 2

    def pairs(lengths, offset):  # a sequence's prediction steps in the rollout from offset
        return sum(len(prediction_steps(offset, min(offset + rollout, n) - offset, every))
                   for n in lengths if n > offset)

    def total(x, y, lengths):
        task.seq_len = max(lengths)  # an equal-length task's T (a padded batch's is the longest)
        memup = MemUP(model, task, batch_size=len(lengths), rollout=rollout, targets=1, predict_every=every,
                      detector=EMADetector(model, task))
        memup._use_batch(x, y, task)
        out = 0
        while memup.offset < max(lengths):
            n = pairs(lengths, memup.offset)  # before loss() moves the offset on
            out = out + memup.loss() * n
            memup.advance()
        return out

    alone = [loss_and_grads(model, lambda s=s, i=i: total(s.unsqueeze(0), labels[i : i + 1], [len(s)]))
             for i, s in enumerate(seqs)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    loss, grads = loss_and_grads(model, lambda: total(packed, labels, LENGTHS))
    torch.testing.assert_close(loss, sum(a[0] for a in alone), rtol=1e-12, atol=1e-12)
    for i, got in enumerate(grads):
        torch.testing.assert_close(got, sum(a[1][i] for a in alone), rtol=1e-9, atol=1e-10)
    with torch.no_grad():
        y, _ = model(packed)
        for i, s in enumerate(seqs):
            torch.testing.assert_close(y[i], model(s.unsqueeze(0))[0][0], rtol=0, atol=1e-12)


class EveryStepTask(LastStepTask):
    readout = "all"


@pytest.mark.parametrize("cell", ["gru", "lstm", "plrnn"])
def test_memup_with_per_step_targets_and_the_current_step_on_different_lengths(cell):
    """Per-step targets, K = 1 plus the current step (two pairs per prediction step): the padded batch
    equals its sequences alone; a step of another sequence's prediction steps adds no pair."""
    torch.manual_seed(0)
    memory = SequenceModel(cell, 3, 8, 2, readout="all").double()
    model = MemUPModel(memory, MLPPredictor(8, 3, 2, hidden=16)).double()
    task, (_, seqs, _) = EveryStepTask(), setup(cell, "all")
    labels = torch.randint(0, 2, (len(seqs), max(LENGTHS)), generator=torch.Generator().manual_seed(2))
    rollout, every = 3, 2

    def pairs(lengths, offset):
        return 2 * sum(len(prediction_steps(offset, min(offset + rollout, n) - offset, every))
                       for n in lengths if n > offset)

    def total(x, y, lengths):
        task.seq_len = max(lengths)
        memup = MemUP(model, task, batch_size=len(lengths), rollout=rollout, targets=1, predict_every=every,
                      current_step=True, detector=EMADetector(model, task))
        memup._use_batch(x, y, task)
        out = 0
        while memup.offset < max(lengths):
            n = pairs(lengths, memup.offset)
            out = out + memup.loss() * n
            memup.advance()
        return out

    alone = [loss_and_grads(model, lambda s=s, i=i: total(s.unsqueeze(0), labels[i : i + 1, : len(s)], [len(s)]))
             for i, s in enumerate(seqs)]
    loss, grads = loss_and_grads(model, lambda: total(pack_sequence(seqs, enforce_sorted=False), labels, LENGTHS))
    torch.testing.assert_close(loss, sum(a[0] for a in alone), rtol=1e-12, atol=1e-12)
    for i, got in enumerate(grads):
        torch.testing.assert_close(got, sum(a[1][i] for a in alone), rtol=1e-9, atol=1e-10)
