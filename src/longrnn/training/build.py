"""Turning a RunConfig into a task and a model."""

from __future__ import annotations

from longrnn.config import RunConfig
from longrnn.models import SequenceModel
from longrnn.tasks import Task, make_task
from longrnn.training.memup import MemUPModel, build_memup_model


def build_task(config: RunConfig) -> Task:
    options = dict(config.task.options)
    if config.task.seq_len is not None:
        options["seq_len"] = config.task.seq_len
    return make_task(config.task.name, **options)


def build_model(config: RunConfig, task: Task) -> SequenceModel | MemUPModel:
    """The model of ``config``; with trainer "memup", its memory wrapped with a predictor (`MemUPModel`)."""
    m = config.model
    named = (("gate", m.gate), ("forget_init", m.forget_init), ("engine", m.engine))
    cell_options = {k: v for k, v in named if v is not None}
    model = SequenceModel(
        m.cell,
        task.input_size,
        m.hidden_size,
        task.output_size,
        num_layers=m.layers,
        readout=task.readout,
        dropout=m.dropout,
        fused=m.fused,
        **cell_options,
        **m.options,
    )
    if config.train.trainer == "memup":
        return build_memup_model(model, task, config.train)
    return model
