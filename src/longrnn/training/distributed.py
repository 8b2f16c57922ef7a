"""Data-parallel training of one run over several processes (`longrnn train --ddp` under torchrun).

Each process builds the same model from the same seed, draws its own batches (its generator is
``longrnn.streams.stream(seed, "train", rank)``, so rank 0 sees exactly the batches of a one-process
run, and no rank's batches can be the validation or test set), and
`torch.nn.parallel.DistributedDataParallel` averages the gradients, so every process takes the same
optimizer step: the effective batch is ``world_size * batch_size``. Process 0 evaluates,
writes the run directory and decides when to stop; the others follow its decision. Backend: gloo on
the CPU, nccl on CUDA. Launch:

    torchrun --nproc-per-node 2 -m longrnn.cli train --ddp --task adding ...
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from longrnn.errors import UsageError


@dataclass
class Workers:
    """This process's place among the training processes (one process: rank 0 of 1, all no-ops)."""

    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model that trains: DistributedDataParallel around ``model`` when there are several processes."""
        return torch.nn.parallel.DistributedDataParallel(model) if self.active else model

    def average(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the processes (the same number on every one)."""
        if not self.active:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world_size

    def follow(self, decision):
        """Process 0's ``decision`` (any picklable value), on every process."""
        if not self.active:
            return decision
        box = [decision]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every process's ``value``, in rank order, on every process."""
        if not self.active:
            return [value]
        out = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def close(self, together: bool = False) -> None:
        """Leave the process group; ``together``: first wait until every process is here, so that none
        tears its connections down while another still holds them (a process that left early while
        process 0 was still writing the summary was seen to abort in gloo's teardown). Unreachable
        DistributedDataParallel wrappers are collected first: left to the interpreter's exit, their
        reducers were destroyed after the group and aborted the process (about 1 run in 10)."""
        if self.active and dist.is_initialized():
            gc.collect()
            if together:
                dist.barrier()
            dist.destroy_process_group()


def start_workers(ddp: bool, device: torch.device) -> Workers:
    """Join the process group that torchrun set up (``ddp``), or stand alone."""
    if not ddp:
        return Workers()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise UsageError("--ddp runs under torchrun, which starts the processes: "
                         "torchrun --nproc-per-node 2 -m longrnn.cli train --ddp ...")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    workers = Workers(dist.get_rank(), dist.get_world_size())
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return workers


def parameter_checksums(model: torch.nn.Module) -> list[float]:
    """One number per parameter tensor (its float64 sum), to compare the copies held by the processes."""
    return [float(p.detach().double().sum()) for p in model.parameters()]
