"""The recurrent stacks inside any model, for the methods that act on a model's layers (warm-up, VAA, gate
diagnostics).

A method needs a stack's layers one by one (``stack.layers``: `longrnn.models.Recurrent` modules, each
with a ``.cell``), its cells (``stack.cells``), a batch-first run that can return every step's states
(``stack.run``) and its ``input_size``. A `longrnn.models.SequenceModel` is such a stack; `Stack` makes
one of a `longrnn.nn` layer (unidirectional: a reverse pass has no reachable states to start from).
`find_stacks` finds them in a user's own ``nn.Module`` and `stack_inputs` records what each one receives
there, so that a method acts on each stack with that stack's own inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from longrnn.cells import State
from longrnn.errors import UsageError
from longrnn.models import Recurrent, SequenceModel, run_layers
from longrnn.nn.layer import RecurrentLayer


class Stack(nn.Module):
    """The layers of a unidirectional `longrnn.nn` layer as a method uses them. Its one submodule is the
    layer itself (``module``), so its parameters and state_dict are the layer's; ``layers`` and ``cells``
    are views of the layer's cells, not registered again."""

    readout = "all"  # as a memory (MemUP), a stack gives its output at every step

    def __init__(self, layer: RecurrentLayer):
        if layer.bidirectional:
            raise UsageError(f"{type(layer).__name__}(bidirectional=True): warm-up, VAA, MemUP and the gate "
                             "diagnostics act on unidirectional layers (a reverse pass has no reachable state "
                             "to start from, and no past-only memory)")
        super().__init__()
        self.module = layer
        self.__dict__["layers"] = [Recurrent(cell) for cell in layer.cells]  # views: not registered twice
        self.__dict__["cells"] = list(layer.cells)
        self.input_size = layer.input_size

    def dropout(self, h: torch.Tensor) -> torch.Tensor:
        """The layer's dropout between its layers (in training mode only)."""
        return nn.functional.dropout(h, self.module.dropout, training=self.module.training and self.module.dropout > 0)

    def run(self, x: torch.Tensor, state: list[State] | None = None, return_states: bool = False):
        """Batch-first ``x`` (B, T, I) through every layer: ``(outputs, finals)``, plus each layer's per-step
        states when ``return_states`` (as `SequenceModel.run`, without a readout)."""
        return run_layers(self.layers, self.dropout, x, state, return_states)


def is_stack(module) -> bool:
    """Whether a method can act on ``module`` directly: a `longrnn.nn` layer, or a model of the harness
    that exposes its stack (``layers`` and ``cells``: `SequenceModel`, MemUP's memory-and-predictor)."""
    return isinstance(module, RecurrentLayer) or (hasattr(module, "layers") and hasattr(module, "cells"))


def as_stack(module):
    """A harness model as it is, a `longrnn.nn` layer as a `Stack`; anything else is a UsageError."""
    if isinstance(module, RecurrentLayer):
        return Stack(module)
    if is_stack(module):
        return module
    raise UsageError(f"{type(module).__name__} is not a longrnn layer (longrnn.nn.*) nor a SequenceModel")


def find_stacks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(path, module)`` of every `longrnn.nn` layer and `SequenceModel` inside ``module`` (itself
    included), outermost first, in registration order; none inside another. Raises a UsageError when
    there is none."""
    found: list[tuple[str, nn.Module]] = []
    for path, sub in module.named_modules():
        inside = any(path.startswith(f"{outer}.") or outer == "" for outer, _ in found)
        if isinstance(sub, (RecurrentLayer, SequenceModel)) and not inside:
            found.append((path, sub))
    if not found:
        raise UsageError(f"{type(module).__name__} holds no longrnn layer (longrnn.nn.*) nor SequenceModel")
    return found


@torch.no_grad()
def stack_inputs(model: nn.Module, target: nn.Module, inputs) -> torch.Tensor:
    """What ``target`` (a module inside ``model``) receives when ``model(inputs)`` runs, batch-first.

    Raises:
        UsageError: ``model(inputs)`` never calls ``target``, or gives it a PackedSequence.
    """
    if target is model:
        received = inputs
    else:
        seen = []
        handle = target.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            model(inputs)
        finally:
            handle.remove()
        if not seen:
            raise UsageError(f"{type(model).__name__}(inputs) never calls its {type(target).__name__}")
        received = seen[0]
    if not isinstance(received, torch.Tensor) or received.dim() != 3:
        given = tuple(received.shape) if isinstance(received, torch.Tensor) else type(received).__name__
        raise UsageError(f"the methods need batched sequences, a 3-D tensor, as the layer's input; got {given}")
    batch_first = getattr(target, "batch_first", True)  # a SequenceModel is batch-first
    return received if batch_first else received.transpose(0, 1)


def for_each_stack(method, model: nn.Module, inputs, *args):
    """``method(stack, its batch-first inputs, *args)`` for a stack (`is_stack`), or ``{path: result}`` for
    every stack inside ``model``, each on what it receives when ``model(inputs)`` runs — in turn, so a
    later stack sees what an earlier call changed (a warm-up of the layers below it)."""
    if is_stack(model):
        return method(as_stack(model), stack_inputs(model, model, inputs), *args)
    return {path: method(as_stack(sub), stack_inputs(model, sub, inputs), *args) for path, sub in find_stacks(model)}
