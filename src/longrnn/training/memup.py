"""MemUP: train a recurrent memory by predicting the most uncertain future outcomes.

Sorokin, Buzun, Pugachev & Burtsev, "Explain My Surprise: Learning Efficient Long-Term Memory by
Predicting Uncertain Outcomes", NeurIPS 2022 (arXiv 2207.13649); official code ``griver/memup``. The
step-by-step algorithm below follows that code (see ../shared/research/memup.md §2.2 and §4).

Objects:

* memory g_θ: any registered cell, i.e. the recurrent layers of a `SequenceModel`; m_t is the top
  layer's output at step t (the model's linear head is not used);
* predictor f_φ(y_k | m_t, x_k): `MLPPredictor` (default) or `LocalRNNPredictor`, which reads the last
  ``context_len`` inputs up to k through its own small GRU (the "local recurrent context" of the copy-task
  code, restricted to a window so it cannot do the memory's job);
* uncertainty detector d(y_k | ·): `EMADetector` (the per-step loss of an exponential-moving-average copy
  of memory + predictor, predicting y_k from m̄_k, computed without gradients over the whole sequence) or
  `LocalDetector` (a memoryless model of the input window, trained online). Both have
  ``scores(x, y_steps, scored) -> u`` and ``update(model, batch)``; the detector is pluggable.

The memory and predictor as one model are in training/memup_model.py, the detectors in
training/memup_detectors.py (both re-exported here); this file is the training step.

One optimisation step (`MemUP.loss`, then `MemUP.advance`):

1. When the batch in hand is used up, draw a new one, run the detector over the whole sequences once
   (u_k for every step k) and start from a fresh memory state.
2. Run the memory over the next slice [s, s + r) from the carried state, with gradients (r = ``rollout``).
3. Prediction steps P = {s + f - 1, s + 2f - 1, ...} ∪ {last step of the slice} (f = ``predict_every``);
   with ``random_phase`` P = {s + φ, s + φ + f, ...} ∪ {last}, φ ~ U{0..f-1} drawn per rollout (not in the
   official code: evaluation reads m_k at every recall step k, and with a fixed phase the predictor only
   ever sees m_t at the same f-th steps; on copy it then decoded m_k at the other steps worse).
4. For each t ∈ P, the targets U_t = top-K_{k ≥ t} u_k (K = ``targets``); or the official code's other
   selectors: the top-K of the whole sequence (``selection="global"``), and sampling with a temperature
   (``temperature`` > 0: Gumbel top-K) — `longrnn.training.memup_targets`.
5. Loss = ``loss_weight`` × mean over all (t, k ∈ U_t) of ℓ(f_φ(m_t, x_k), y_k) — the paper's eq. 5 (CE
   for classes, MSE for values; the official copy script weighs it by 0.1); the caller clips the gradient
   norm and steps the optimizer.
6. Detach the carried state (the gradient reaches back r steps plus the K target predictions), update
   the detector (EMA: θ̄ ← λ θ̄ + (1 - λ) θ every ``ema_every`` steps).

Evaluation (`MemUPModel.forward`), as in the official ``MemUPEvalSampler``: run the memory over the
whole sequence and predict y_k from m_k at every step k; the task scores the steps it scores. With
``eval_ema`` the EMA copy is what is evaluated and kept as the best weights, as the official copy script
evaluates its EMA networks. The official copy script's alternating schedule (predictor pre-trained against
a fixed memory, then memory and predictor phases in turn) is `longrnn.training.memup_schedule`.

Sequences are processed in chunks of ``chunk_len`` steps whenever they are run without gradients
(detector, evaluation), so no activation grows with the sequence length. A batch that `Task.streams_batch`
says is too long to hold is not held at all: it is drawn as the task's plan and read chunk by chunk, the
detector's scores kept as a top-K per chunk (`StreamedBatch`, training/memup_batch.py); a batch held
whole keeps its inputs and one score per step (`HeldBatch`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from longrnn.cells import detach_state
from longrnn.errors import UsageError, check_positive, unknown
from longrnn.methods.stack import as_stack
from longrnn.streams import stream
from longrnn.training.memup_batch import (  # noqa: F401 (input_windows, windows_at: re-exported)
    HeldBatch,
    StreamedBatch,
    input_windows,
    take_steps,
    windows_at,
)
from longrnn.training.memup_detectors import DETECTORS, EMADetector, LocalDetector, WindowModel  # noqa: F401
from longrnn.training.memup_model import (  # noqa: F401 (the model's pieces: re-exported)
    PREDICTORS,
    LocalRNNPredictor,
    MemUPModel,
    MLPPredictor,
    build_memup_model,
    make_predictor,
    memory_outputs,
)
from longrnn.training.memup_targets import (  # noqa: F401 (select_targets: re-exported)
    MIN_TEMPERATURE,
    SELECTIONS,
    TargetSelector,
    select_targets,
)


def prediction_steps(start: int, length: int, every: int, phase: int | None = None) -> list[int]:
    """P = {start + φ, start + φ + every, ...} ∪ {start + length - 1}: steps that predict (φ = ``phase``,
    by default every - 1 as in the official code)."""
    phase = every - 1 if phase is None else phase
    steps = list(range(start + phase, start + length, every))
    if not steps or steps[-1] != start + length - 1:
        steps.append(start + length - 1)
    return steps


class SequenceTargets:
    """What MemUP needs of a task, for sequences a user brings (`MemUP.for_layer`): per-step targets,
    which steps have one, and a per-step loss — cross-entropy on class indices (-100: no target, torch's
    ignore_index) or the squared error averaged over features (NaN: no target)."""

    readout = "all"
    LOSSES = ("cross_entropy", "mse")

    def __init__(self, input_size: int, output_size: int, loss: str):
        if loss not in self.LOSSES:
            raise unknown("memup loss", loss, self.LOSSES)
        self.input_size, self.output_size, self.loss = input_size, output_size, loss

    def step_targets(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.loss == "cross_entropy":
            if y.dim() != 2 or y.dtype.is_floating_point:
                raise UsageError(f"y must be (batch, time) class indices for loss 'cross_entropy', got "
                                 f"{tuple(y.shape)} {y.dtype}")
            scored = y != -100
            if ((y < 0) & scored).any() or (y >= self.output_size).any():
                raise UsageError(f"class indices must be in [0, {self.output_size}) or -100 (no target)")
            return y.clamp(min=0), scored
        if y.dim() != 3 or y.shape[-1] != self.output_size or not y.dtype.is_floating_point:
            raise UsageError(f"y must be (batch, time, {self.output_size}) values for loss 'mse', got "
                             f"{tuple(y.shape)} {y.dtype}")
        return y.nan_to_num(0.0), ~y.isnan().any(-1)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        if self.loss == "cross_entropy":
            flat = F.cross_entropy(y_hat.reshape(-1, y_hat.shape[-1]), y_steps.reshape(-1), reduction="none")
            return flat.view(y_steps.shape)
        return (y_hat - y_steps).pow(2).mean(dim=-1)


def _step_targets(task, y: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`Task.step_targets` of sequences ending at ``lengths``: readout "last" scores each one at its own
    last step; "all" scores no step after its end."""
    time = int(lengths.max())
    if task.readout == "last":
        scored = torch.zeros(len(y), time, dtype=torch.bool, device=y.device)
        scored[torch.arange(len(y)), lengths.to(y.device) - 1] = True
        return y.unsqueeze(1).expand(len(y), time, *y.shape[1:]), scored
    y_steps, scored = task.step_targets(y)
    return y_steps, scored[:, :time] & (torch.arange(time) < lengths.unsqueeze(1)).to(scored.device)


# --- the training step ----------------------------------------------------------------------------
def check_settings(t) -> None:
    """Check the ``memup_*`` choices of a TrainConfig (predictor, detector, selection), naming the bad value
    and what is allowed, and refuse a setting the run would ignore; their numbers are checked with every
    other key's (`longrnn.runs.config.RANGES`)."""
    if t.memup_predictor not in PREDICTORS:
        raise unknown("memup_predictor", t.memup_predictor, PREDICTORS)
    if t.memup_detector not in DETECTORS:
        raise unknown("memup_detector", t.memup_detector, DETECTORS)
    if t.memup_selection not in SELECTIONS:
        raise unknown("memup_selection", t.memup_selection, SELECTIONS)
    if t.memup_eval_ema and t.memup_detector != "ema":
        raise UsageError(f"train.memup_eval_ema evaluates the EMA detector's copy of the model; it needs "
                         f"memup_detector 'ema', this run's is {t.memup_detector!r}")
    if 0 < t.memup_temperature < MIN_TEMPERATURE:
        raise UsageError(f"train.memup_temperature must be 0 (the top-K, what a vanishing temperature tends to) "
                         f"or at least {MIN_TEMPERATURE:g}, got {t.memup_temperature!r}")


def check_streaming(temperature: float, batch_size: int, task, stage: bool = False) -> None:
    """A UsageError when batches of ``batch_size`` sequences of ``task`` are streamed (`Task.streams_batch`,
    training/memup_batch.py) and targets are sampled (``temperature`` > 0), which needs every step's score
    at once; ``stage``: the task is a curriculum stage."""
    if temperature > 0 and task.streams_batch(batch_size):
        where = " (a curriculum stage)" if stage else ""
        raise UsageError(f"--memup-temperature {temperature:g} (train.memup_temperature) samples targets from "
                         f"every step's score, but a batch of {batch_size} sequences of {task.seq_len} steps{where} "
                         f"is too long to hold and is streamed chunk by chunk, keeping each chunk's top-K only: "
                         f"use --memup-temperature 0, a smaller --batch-size or shorter sequences")


class MemUP:
    """The MemUP optimisation step over a stream of task batches: ``loss(generator)`` then ``advance()``."""

    def __init__(self, model: MemUPModel, task, batch_size: int, rollout: int = 20, targets: int = 10,
                 predict_every: int = 10, current_step: bool = False, detector=None, seed: int = 0,
                 device="cpu", random_phase: bool = False, curriculum=None, selection: str = "future",
                 temperature: float = 0.0, resample_every: int = 20, loss_weight: float = 1.0,
                 eval_ema: bool = False):
        self.model, self.task, self.batch_size = model, task, batch_size
        self.curriculum = curriculum  # batch index -> the task to draw it from (training/curriculum.py)
        (self.rollout, self.targets, self.predict_every,
         self.current_step) = rollout, targets, predict_every, current_step
        self.random_phase, self.loss_weight = random_phase, loss_weight
        self.detector = detector if detector is not None else EMADetector(model, task)
        if eval_ema and not isinstance(self.detector, EMADetector):
            raise UsageError("eval_ema evaluates the EMA detector's copy of the model; it needs detector 'ema'")
        self.eval_ema = eval_ema
        self.device = torch.device(device)
        self.generator = stream(seed, "memup")  # random padding (and sampling) of the target lists
        self.selector = TargetSelector(targets, selection, temperature, resample_every, self.generator)
        self.batch = None  # the sequences in hand: a HeldBatch, or a StreamedBatch (training/memup_batch.py)
        self.lengths = None  # (batch,) their lengths, when they differ
        self.batches = 0  # batches drawn so far
        self.offset = 0  # first step of the next rollout
        self.state = None  # carried memory state, detached

    @staticmethod
    def check_task(t, task, stages=()) -> None:
        """A UsageError when the task is too short for the TrainConfig ``t``'s MemUP settings, or its
        batches (or those of a curriculum's ``stages``, tasks) would be streamed and the settings cannot be."""
        if t.memup_targets > task.seq_len:
            raise UsageError(f"memup_targets ({t.memup_targets}) must be at most the sequence length "
                             f"({task.seq_len}): each prediction step predicts that many of the steps ahead")
        for each in (task, *stages):
            check_streaming(t.memup_temperature, t.batch_size, each, stage=each is not task)

    @classmethod
    def from_config(cls, model: MemUPModel, task, t, device="cpu", curriculum=None) -> MemUP:
        """Build from a TrainConfig ``t`` (its ``memup_*`` fields, ``batch_size`` and ``seed``)."""
        cls.check_task(t, task)
        if t.memup_detector == "ema":
            detector = EMADetector(model, task, t.memup_ema_decay, t.memup_ema_every)
        else:
            detector = LocalDetector(task, task.input_size, task.output_size, t.memup_hidden, t.memup_context_len,
                                     t.memup_detector_lr, t.memup_local_samples,
                                     stream(t.seed, "detector")).to(device)
        return cls(model, task, t.batch_size, t.memup_rollout, t.memup_targets, t.memup_predict_every,
                   t.memup_current_step, detector, seed=t.seed, device=device, random_phase=t.memup_random_phase,
                   curriculum=curriculum, selection=t.memup_selection, temperature=t.memup_temperature,
                   resample_every=t.memup_resample_every, loss_weight=t.memup_loss_weight, eval_ema=t.memup_eval_ema)

    @classmethod
    def for_layer(cls, memory: nn.Module, output_size: int, loss: str = "cross_entropy", rollout: int = 20,
                  targets: int = 10, predict_every: int = 10, predictor: str = "mlp", hidden: int = 256,
                  context_len: int = 1, detector: str = "ema", ema_decay: float = 0.995, seed: int = 0,
                  device="cpu", selection: str = "future", temperature: float = 0.0) -> MemUP:
        """MemUP for a memory of your own, trained on sequences you bring (`fit`), in your own loop.

        Args:
            memory: a unidirectional `longrnn.nn` layer (or a `SequenceModel`); m_t is its top layer's
                output. It reads (batch, time, input_size) whatever its ``batch_first``.
            output_size: classes (``loss="cross_entropy"``) or target features (``loss="mse"``).
            rollout, targets, predict_every: r, K and f of the module docstring (steps).
            predictor: "mlp" or "local_rnn" (`PREDICTORS`), ``hidden`` wide, reading ``context_len`` inputs.
            detector: "ema" (the official code's) or "local" (`DETECTORS`); ``ema_decay`` λ.
            seed: the stream of the target lists' random padding and sampling (`longrnn.streams`).
            selection, temperature: "future" or "global" targets, the top-K (0) or sampled with this
                temperature (`longrnn.training.memup_targets`).

        Raises:
            ValueError (`longrnn.errors.UsageError`): an unknown name or a size out of range.
        """
        for name, value in (("output_size", output_size), ("rollout", rollout), ("targets", targets),
                            ("predict_every", predict_every), ("hidden", hidden), ("context_len", context_len)):
            check_positive(name, value)
        if detector not in DETECTORS:
            raise unknown("memup detector", detector, DETECTORS)
        stack = as_stack(memory)
        data = SequenceTargets(stack.input_size, output_size, loss)
        dtype = next(stack.parameters()).dtype  # the predictor in the memory's precision (e.g. float64)
        model = MemUPModel(stack, make_predictor(predictor, stack.layers[-1].cell.output_size, stack.input_size,
                                                 output_size, hidden, context_len)).to(device=device, dtype=dtype)
        if detector == "ema":
            scorer = EMADetector(model, data, ema_decay)
        else:
            scorer = LocalDetector(data, stack.input_size, output_size, hidden, context_len,
                                   generator=stream(seed, "detector")).to(device, dtype)
        return cls(model, data, batch_size=0, rollout=rollout, targets=targets, predict_every=predict_every,
                   detector=scorer, seed=seed, device=device, selection=selection, temperature=temperature)

    def parameters(self):
        """The memory's and the predictor's parameters (for your optimizer)."""
        return self.model.parameters()

    def fit(self, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, clip: float | None = 1.0):
        """Train on one batch of your sequences: every rollout of it in turn (steps 1-6 of the module
        docstring), one optimizer step each. Returns the mean MemUP loss over the rollouts.

        x: (batch, time, input_size). y: (batch, time) class indices (``loss="cross_entropy"``; -100 marks
        a step without a target, as torch's ignore_index) or (batch, time, output_size) values (``"mse"``;
        NaN marks a step without a target). ``clip``: the gradient-norm limit (None: none).

        Raises:
            ValueError (`longrnn.errors.UsageError`): x or y of the wrong shape or kind.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.task.input_size:
            given = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise UsageError(f"x must be (batch, time, {self.task.input_size}), got {given}")
        if not isinstance(y, torch.Tensor) or tuple(y.shape[:2]) != tuple(x.shape[:2]):
            given = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise UsageError(f"y must start with x's (batch, time) = {tuple(x.shape[:2])}, got {given}")
        self._use_batch(x, y, self.task)
        losses = []
        while self.offset < self.batch.time:
            loss = self.loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            optimizer.step()
            self.advance()
            losses.append(loss.item())
        return sum(losses) / len(losses)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """ŷ_k from m_k at every step k: (batch, time, output_size), logits or values (the evaluation path)."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model.step_predictions(x.to(self.device))[0]
        finally:
            self.model.train(was_training)

    @property
    def stream_chunk_len(self) -> int:
        """Steps per chunk of a streamed batch: the model's ``chunk_len`` rounded up to whole rollouts."""
        return self.rollout * -(-self.model.chunk_len // self.rollout)

    def _task_of_batch(self, index: int):
        return self.curriculum(index) if self.curriculum is not None else self.task

    def streams(self, task) -> bool:
        """Whether this trainer's batches of ``task`` are streamed (`Task.streams_batch`); a UsageError when
        they would be and the settings need every step's score at once (`check_streaming`)."""
        check_streaming(self.selector.temperature, self.batch_size, task, stage=task is not self.task)
        return task.streams_batch(self.batch_size)

    def _next_batch(self, generator: torch.Generator) -> None:
        task = self._task_of_batch(self.batches)
        self.batches += 1
        if self.streams(task):
            self.lengths = None
            self._hold(StreamedBatch(task, task.plan(self.batch_size, generator), self.detector.scorer(),
                                     self.selector.k, self.stream_chunk_len, self.model.predictor.context_len,
                                     self.selector.selection, self.device))
            return
        x, y = task.sample(self.batch_size, generator)
        self._use_batch(x, y, task)

    def _hold(self, batch) -> None:
        """Take ``batch`` (a HeldBatch or StreamedBatch) in hand: its candidates to the selector, a fresh state."""
        self.batch = batch
        self.selector.start(*batch.candidates())
        self.offset, self.state = 0, None

    def _use_batch(self, x: torch.Tensor | PackedSequence, y: torch.Tensor, task) -> None:
        """Take (x, y) as the sequences in hand: targets per step, the detector's scores, a fresh state.
        Sequences of different lengths (a PackedSequence) are padded; no step after a sequence's end is
        a target or a prediction step (`_own_steps`), and the memory, being causal, never carries
        padding into a step before it."""
        self.lengths = None
        if isinstance(x, PackedSequence):
            x, self.lengths = pad_packed_sequence(x, batch_first=True)
        y_steps, scored = task.step_targets(y) if self.lengths is None else _step_targets(task, y, self.lengths)
        x, y_steps, scored = x.to(self.device), y_steps.to(self.device), scored.to(self.device)
        self._hold(HeldBatch(x, y_steps, scored, self.detector.scores(x, y_steps, scored)))

    def loss(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean loss over all (t, k ∈ U_t) pairs of the next rollout, with its graph (steps 1-5); draws the
        next batch from the task with ``generator`` when the one in hand is used up."""
        if self.batch is None or self.offset >= self.batch.time:
            if generator is None:
                raise UsageError("the batch in hand is used up; give MemUP.fit the next one")
            self._next_batch(generator)
        batch, context = self.batch, self.model.predictor.context_len
        stop = min(self.offset + self.rollout, batch.time)
        x = batch.inputs(self.offset, stop)
        self.selector.view(*batch.candidates())  # a streamed batch: the chunk in hand and the best after it
        m, self.state = memory_outputs(self.model.memory, x, self.state)
        phase = None
        if self.random_phase:
            phase = int(torch.randint(self.predict_every, (), generator=self.generator))
        steps, own = self._own_steps(stop, phase)
        idx, valid = self.selector.select(steps)
        valid = valid & own.to(valid.device).unsqueeze(-1)
        windows, y_k = batch.targets(idx, context)
        if self.current_step:
            here = steps.to(self.device).expand(x.shape[0], -1).unsqueeze(-1)
            windows_t, y_t, mine = batch.at_steps(here, context)
            windows, y_k = torch.cat([windows, windows_t], 2), torch.cat([y_k, y_t], 2)
            valid = torch.cat([valid, mine & own.to(valid.device).unsqueeze(-1)], -1)
        m_t = m[:, steps - self.offset].unsqueeze(2).expand(-1, -1, valid.shape[-1], -1)
        per_pair = self.task.step_loss(self.model.predictor(m_t, windows), y_k)
        weight = valid.to(per_pair.dtype)
        self.offset = stop
        return self.loss_weight * (per_pair * weight).sum() / weight.sum().clamp(min=1.0)

    def _own_steps(self, stop: int, phase: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The prediction steps P of the rollout [offset, stop) (long, (P,)), and which of them belong to
        each sequence ((batch, P) bool): all, for sequences of equal length; else each sequence's own P,
        the rollout cut at its end, as if it ran alone."""
        every = self.predict_every
        if self.lengths is None:
            steps = prediction_steps(self.offset, stop - self.offset, every, phase)
            return torch.tensor(steps), torch.ones(self.batch.size, len(steps), dtype=torch.bool)
        ends = self.lengths.clamp(max=stop).tolist()
        own = [set(prediction_steps(self.offset, end - self.offset, every, phase)) if end > self.offset else set()
               for end in ends]
        steps = sorted(set().union(*own))  # not empty: the longest sequence runs to stop
        return torch.tensor(steps), torch.tensor([[t in mine for t in steps] for mine in own])

    def drop_frozen_grads(self) -> None:
        """Between clipping and the optimizer step: nothing here (every parameter learns); the alternating
        schedule (`longrnn.training.memup_schedule`) drops the gradients of the part its phase holds fixed."""

    def evaluated_model(self) -> MemUPModel:
        """The model that evaluation scores and keeps as the best weights: the EMA copy with ``eval_ema``."""
        return self.detector.ema if self.eval_ema else self.model

    def advance(self) -> None:
        """After the optimizer step: cut the graph at the carried state and update the detector (step 6)."""
        self.state = [detach_state(s) for s in self.state]
        self.detector.update(self.model, self.batch)

    def state_dict(self) -> dict:
        """Everything the next steps depend on. The batch in hand: a `HeldBatch` as its tensors ("batch",
        "uncertainty"), a `StreamedBatch` as its plan, suffix top-K, chunk and scorer ("streamed")."""
        batch = self.batch.state_dict() if self.batch is not None else {"batch": None, "uncertainty": None}
        return {"detector": self.detector.state_dict(), "generator": self.generator.get_state(), **batch,
                "offset": self.offset, "state": self.state, "batches": self.batches, "lengths": self.lengths,
                "selector": self.selector.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.detector.load_state_dict(state["detector"])
        self.generator.set_state(state["generator"])
        self.offset, self.state = state["offset"], state["state"]
        self.batches = state.get("batches", 0)  # checkpoints from before curricula
        self.lengths = state.get("lengths")  # and from before variable lengths
        self.batch = None
        if state.get("streamed") is not None:
            self.batch = StreamedBatch.from_state(
                state["streamed"], self._task_of_batch(self.batches - 1), self.detector.scorer(), self.selector.k,
                self.stream_chunk_len, self.model.predictor.context_len, self.selector.selection, self.device)
        elif state["batch"] is not None:
            self.batch = HeldBatch(*state["batch"], state["uncertainty"])
        if self.batch is not None and "selector" in state:
            self.selector.load_state_dict(state["selector"], *self.batch.candidates())
        elif self.batch is not None:  # checkpoints before target sampling: top-K of future steps, no draws
            self.selector.start(*self.batch.candidates())
