"""Length curricula: train on shorter versions of the task first (``--curriculum LEN:BATCHES,...``).

``curriculum = "10:20000,100:5000"`` draws the first 20,000 training batches from the task at
``seq_len`` 10, the next 5,000 at 100, and every later one at the run's own ``seq_len``. Stages count
batches, not optimisation steps, so every trainer sees the same sequences: a bptt or tbptt step is one
batch, a MemUP step one rollout (a batch lasts length / r steps). Only the training batches change:
validation and test always use the run's own task, so the learning curve shows the target length from
the first evaluation on, and steps to solve count the curriculum's steps too.

Why: on ``copy`` the hard part for a gated RNN is writing 10 ordered symbols into memory, a problem of
the first 10 steps whatever the delay. With MemUP at delay 5,000 and rollouts of r = 100 only one
rollout in 51 reaches those steps; at delay 10 (30 steps) every one does. A short stage learns the writing, the
long stage then only has to learn to keep it (docs/results/memup.md).

The stage is a function of the number of batches drawn (the step count, or MemUP's batch counter, which
its checkpoint keeps), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import math

from longrnn.errors import UsageError
from longrnn.runs.config import RunConfig
from longrnn.tasks import Task, task_options
from longrnn.training.build import build_task


def parse_curriculum(text: str) -> list[tuple[int, int]]:
    """'10:20000,100:5000' -> [(10, 20000), (100, 5000)]: (sequence length, batches) per stage."""
    stages = []
    for part in [p.strip() for p in text.split(",")] if text.strip() else []:
        if not part:  # "10:200," or ",10:200": a stage left out
            raise UsageError(f"curriculum {text!r} has an empty stage; give LENGTH:BATCHES stages separated by "
                             "commas")
        length, sep, steps = part.partition(":")
        try:
            stage = (int(length), int(steps))
        except ValueError:
            stage = None
        if not sep or stage is None or min(stage) < 1:
            raise UsageError(f"curriculum stage {part!r} is not LENGTH:BATCHES with two positive integers "
                             f"(e.g. --curriculum 10:20000,100:5000)")
        stages.append(stage)
    return stages


class Curriculum:
    """``task_at(batch)``: the task that the run's ``batch``-th training batch (0-based) is drawn from."""

    def __init__(self, config: RunConfig, task: Task):
        self.task = task
        self.stages = parse_curriculum(config.train.curriculum)
        if self.stages and "seq_len" not in task_options(config.task.name):
            raise UsageError(f"curriculum: task {config.task.name!r} has no seq_len to vary")
        if config.train.trainer != "memup" and sum(n for _, n in self.stages) >= config.train.steps:
            raise UsageError(f"curriculum {config.train.curriculum!r} takes {sum(n for _, n in self.stages)} "
                             f"batches, so none of the run's {config.train.steps} steps is left for the task "
                             f"itself; raise --steps or shorten the stages")
        self.stage_tasks = [build_task(_with_length(config, length)) for length, _ in self.stages]

    def task_at(self, batch: int) -> Task:
        for stage_task, (_, batches) in zip(self.stage_tasks, self.stages):
            if batch < batches:
                return stage_task
            batch -= batches
        return self.task

    def batches_after(self, rollouts: int, rollout_len: int) -> int:
        """Batches drawn after ``rollouts`` MemUP rollouts of ``rollout_len`` steps (a batch lasts
        ceil(length / r) of them, and is used up before the next is drawn)."""
        batches = 0
        for stage_task, (_, count) in zip(self.stage_tasks, self.stages):
            per_batch = math.ceil(stage_task.seq_len / rollout_len)
            if rollouts <= count * per_batch:
                return batches + math.ceil(rollouts / per_batch)
            batches, rollouts = batches + count, rollouts - count * per_batch
        return batches + math.ceil(rollouts / math.ceil(self.task.seq_len / rollout_len))


def _with_length(config: RunConfig, length: int) -> RunConfig:
    """The config's task at another length, with fixed sets of one sequence (a stage never evaluates)."""
    staged = copy.deepcopy(config)
    staged.task.seq_len = length
    sizes = {key: 1 for key in ("validation_size", "test_size") if key in task_options(config.task.name)}
    staged.task.options = {**staged.task.options, **sizes}
    return staged


def batch_counter(config: RunConfig):
    """steps -> the training batches a run has drawn after that many optimisation steps: the steps
    themselves for bptt / tbptt; for MemUP, whose batch lasts ceil(length / r) rollouts, counted through
    the curriculum's stages (the tasks are built once, here), for each phase of an alternating schedule."""
    t = config.train
    if t.trainer != "memup":
        return lambda steps: steps
    curriculum = Curriculum(config, build_task(config))
    if t.memup_schedule == "alternating":  # each phase draws its own batches (training/memup_schedule.py)
        from longrnn.training.memup_schedule import steps_by_phase

        return lambda steps: sum(curriculum.batches_after(n, t.memup_rollout)
                                 for n in steps_by_phase(steps, t.memup_pretrain_steps, t.memup_phase_steps))
    return lambda steps: curriculum.batches_after(steps, t.memup_rollout)
