"""The sequences MemUP trains on: held whole (`HeldBatch`), or streamed chunk by chunk (`StreamedBatch`)
so that what training holds does not grow with the sequence length.

MemUP (training/memup.py) reads the batch in hand in four ways: the inputs of each rollout, the detector's
uncertainty u_k as the target selector's candidates (training/memup_targets.py), the input windows and
targets at the steps it selects, and the steps the detector's update fits on. `HeldBatch` keeps the whole
sequences' inputs, per-step targets and u: (batch, T) values each. `StreamedBatch` keeps the task's plan
(``Task.plan``; tasks/streaming.py), the chunk in hand and, per chunk, the K most uncertain steps:

1. when the batch is drawn, a copy of the detector as it is then (a `ChunkScorer`) scores the sequences
   chunk by chunk, its state carried from chunk to chunk; each chunk keeps its top-K (step, u, target);
2. the suffix top-K S_c = top-K(chunk c's top-K ∪ S_{c+1}) follow, last chunk first;
3. when the rollouts enter chunk c, its steps are built again from the plan (``Task.window``) and scored
   again by the same copy from the state carried to the chunk's start. The candidates of a prediction
   step t in chunk c are chunk c's steps k ≥ t and S_{c+1}: their top-K is the top-K of every step k ≥ t.
   With selection "global" the candidates are S_0, the sequence's top-K. The input windows of the
   suffix entries in view are built from the plan, one sequence's few steps each.

Held per sequence: the chunk (``chunk_len`` steps) and three numbers per suffix entry (T / chunk_len · K
of them: at T = 10^6, chunk_len = 1,000 and K = 10, 10,000 entries). The price: the detector scores every
step twice (without gradients). Targets and losses equal `HeldBatch`'s up to the rounding of scores
computed over other chunk lengths (tested); the local detector's update fits on the pairs in view (the
chunk's and the suffix entries'), not on the whole batch's, so its runs differ. Sampled targets
(temperature > 0) need every step's score at once: MemUP refuses them on streamed batches. Chunks start
at multiples of ``chunk_len``, a multiple of the rollout, so no rollout spans two chunks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.tasks.streaming import plan_rows, plan_size

NEG_INF = float("-inf")


# --- pieces of data ------------------------------------------------------------------------------
def input_windows(x: torch.Tensor, length: int) -> torch.Tensor:
    """(batch, time, d) -> (batch, time, length, d): the inputs x_{k-length+1..k}, zeros before the start."""
    padded = F.pad(x, (0, 0, length - 1, 0))
    return padded.unfold(1, length, 1).transpose(-1, -2)


def chunk_windows(x: torch.Tensor, tail: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input windows of a chunk x (batch, c, d) of longer sequences whose ``length - 1`` inputs before
    it are ``tail`` (batch, length - 1, d; zeros at the start): (windows (batch, c, length, d), the tail
    that the next chunk's windows read)."""
    joined = torch.cat([tail, x], dim=1)
    return input_windows(joined, length)[:, length - 1 :], joined[:, joined.shape[1] - (length - 1) :]


def windows_at(x: torch.Tensor, idx: torch.Tensor, length: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``input_windows(x, length)`` at steps ``idx`` -> (*idx.shape, length, d), built from those steps
    alone (no padded copy of the whole sequence, whose cost grows with its length). ``idx`` is (batch, ...)
    with a row per sequence of ``x``, or, with ``rows`` (the sequence of each entry, shaped like ``idx``),
    any (sequence, step) pairs."""
    steps = idx.unsqueeze(-1) + torch.arange(1 - length, 1, device=idx.device)  # (..., length)
    if rows is None:
        values = take_steps(x, steps.clamp(min=0))
    else:
        values = x[rows.unsqueeze(-1), steps.clamp(min=0)]
    return torch.where((steps >= 0).unsqueeze(-1), values, torch.zeros((), dtype=values.dtype, device=values.device))


def take_steps(seq: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``seq`` (batch, time, ...) at steps ``idx`` (batch, ...) -> (batch, *idx.shape[1:], ...)."""
    rows = torch.arange(seq.shape[0], device=seq.device).view(-1, *([1] * (idx.dim() - 1)))
    return seq[rows, idx]


class ChunkScorer:
    """u_k, the detector's per-step loss, chunk by chunk, by a fixed copy of the detector.

    ``module`` has ``predict_chunk(x, carry) -> (ŷ, carry)`` (x (batch, c, d), carry None at the
    sequences' start), or is None: every score 0 (the alternating schedule's predictor phase, which
    selects no targets). ``score(x, y_steps, scored, carry) -> (u (batch, c), carry)``, -inf where a step
    is not scored.
    """

    def __init__(self, module, task):
        self.module, self.task = module, task

    @torch.no_grad()
    def score(self, x: torch.Tensor, y_steps: torch.Tensor, scored: torch.Tensor, carry=None):
        if self.module is None:
            return torch.zeros(scored.shape, device=scored.device), None
        y_hat, carry = self.module.predict_chunk(x, carry)
        return self.task.step_loss(y_hat, y_steps).masked_fill(~scored, NEG_INF), carry

    def state_dict(self) -> dict:
        return {} if self.module is None else self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.module is not None:
            self.module.load_state_dict(state)


# --- whole sequences -----------------------------------------------------------------------------
class HeldBatch:
    """Whole sequences: x (batch, T, d), y_steps (batch, T, ...), scored (batch, T) and u (batch, T)."""

    streamed = False

    def __init__(self, x: torch.Tensor, y_steps: torch.Tensor, scored: torch.Tensor, uncertainty: torch.Tensor):
        self.x, self.y_steps, self.scored, self.uncertainty = x, y_steps, scored, uncertainty
        self.size, self.time = x.shape[:2]

    def inputs(self, start: int, stop: int) -> torch.Tensor:
        return self.x[:, start:stop]

    def candidates(self) -> tuple[torch.Tensor, torch.Tensor, None]:
        """(scores, scored, positions) for the target selector: every step (positions None)."""
        return self.uncertainty, self.scored, None

    def targets(self, idx: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The input windows (*idx.shape, length, d) and targets at the selector's ``idx`` (batch, P, K)."""
        return windows_at(self.x, idx, length), take_steps(self.y_steps, idx)

    def at_steps(self, steps: torch.Tensor, length: int):
        """Windows, targets and whether scored, at ``steps`` (batch, P, 1) of the rollout in hand."""
        return (*self.targets(steps, length), take_steps(self.scored, steps))

    def detector_samples(self, samples: int, generator: torch.Generator | None, length: int):
        """``samples`` scored (sequence, step) pairs drawn uniformly with replacement, for the local detector's
        update: (windows (samples, length, d), targets (samples, ...)), or None without a scored step."""
        where = self.scored.nonzero()
        if not len(where):
            return None
        pick = where[torch.randint(len(where), (samples,), generator=generator).to(where.device)]
        return windows_at(self.x, pick[:, 1], length, rows=pick[:, 0]), self.y_steps[pick[:, 0], pick[:, 1]]

    def state_dict(self) -> dict:
        return {"batch": (self.x, self.y_steps, self.scored), "uncertainty": self.uncertainty}


# --- chunk by chunk ------------------------------------------------------------------------------
def _best(entries: dict, k: int) -> dict:
    """The ``k`` entries (all fields (batch, n, ...)) with the highest ``u``, best first; where n < k,
    invalid entries (u = -inf, valid False) fill the rest."""
    order = entries["u"].topk(min(k, entries["u"].shape[1]), dim=1).indices
    best = {name: take_steps(value, order) for name, value in entries.items()}
    missing = k - order.shape[1]
    if missing:
        filler = {name: value[:, :1].expand(-1, missing, *value.shape[2:]) for name, value in best.items()}
        best = _joined(best, {**filler, "u": torch.full_like(filler["u"], NEG_INF),
                              "valid": torch.zeros_like(filler["valid"])})
    return best


def _joined(a: dict, b: dict) -> dict:
    return {name: torch.cat([a[name], b[name]], dim=1) for name in a}


def _row(stacked: dict, c: int) -> dict:
    return {name: value[c] for name, value in stacked.items()}


class StreamedBatch:
    """A batch read chunk by chunk from ``task``'s ``plan`` (see the module docstring).

    Args:
        task: a task that can stream (``Task.plan`` and ``Task.window``), at the batch's length.
        plan: ``task.plan(batch, generator)``.
        scorer: a `ChunkScorer`, the detector as it was when the batch was drawn.
        k: targets per prediction step (K); selection: "future" or "global".
        chunk_len: steps per chunk (a multiple of the rollout); context_len: the predictor's window.
        suffix: the suffix top-K of a checkpoint (`state_dict`), instead of scoring the batch again.
    """

    streamed = True

    def __init__(self, task, plan: dict, scorer: ChunkScorer, k: int, chunk_len: int, context_len: int,
                 selection: str = "future", device="cpu", suffix: dict | None = None):
        self.task, self.plan, self.scorer = task, plan, scorer
        self.k, self.chunk_len, self.context_len, self.selection = k, chunk_len, context_len, selection
        self.device, self.time = torch.device(device), task.seq_len
        self.size = plan_size(plan)
        self.chunks = -(-self.time // chunk_len)
        self.suffix = suffix if suffix is not None else self._suffixes()
        self.chunk = -1  # the chunk in hand
        self._window_cache = {}  # (sequence, step) -> input window, of the suffix entries in view
        self._load(0, None, None)

    def _bounds(self, c: int) -> tuple[int, int]:
        return c * self.chunk_len, min((c + 1) * self.chunk_len, self.time)

    def _positions(self, c: int) -> torch.Tensor:
        """(batch, chunk c's length): the step of each of its columns."""
        return torch.arange(*self._bounds(c), device=self.device).expand(self.size, -1)

    def _build(self, c: int, carry, tail):
        """Chunk c: its inputs with the ``context_len - 1`` before them, targets, scored, u; the carries after."""
        start, stop = self._bounds(c)
        x, y = self.task.window(self.plan, start, stop)
        y_steps, scored = self.task.window_targets(y, start, stop)
        x, y_steps, scored = x.to(self.device), y_steps.to(self.device), scored.to(self.device)
        if tail is None:
            tail = x.new_zeros(x.shape[0], self.context_len - 1, x.shape[2])
        u, carry = self.scorer.score(x, y_steps, scored, carry)
        x_ext = torch.cat([tail, x], dim=1)
        return x_ext, y_steps, scored, u, carry, x_ext[:, x_ext.shape[1] - (self.context_len - 1) :]

    def _suffixes(self) -> dict:
        """S_0 .. S_chunks, each field stacked (chunks + 1, batch, K, ...): the top-K of the steps from each
        chunk's start on (S_chunks: K invalid entries). Stacked, not a list of small tensors: at 10^6
        steps there are a thousand chunks, and their interleaving with the chunks' inputs fragments memory."""
        carry = tail = tops = None
        for c in range(self.chunks):
            _, y_steps, scored, u, carry, tail = self._build(c, carry, tail)
            entries = {"u": u, "step": self._positions(c), "valid": scored, "y": y_steps}
            best = _best(entries, self.k)
            if tops is None:
                tops = {name: value.new_zeros(self.chunks + 1, *value.shape) for name, value in best.items()}
            for name, value in best.items():
                tops[name][c] = value
        tops["u"][-1] = NEG_INF  # S_chunks: nothing valid
        for c in reversed(range(self.chunks)):  # in place: row c, chunk c's top-K, becomes S_c
            merged = _best(_joined(_row(tops, c), _row(tops, c + 1)), self.k)
            for name, value in merged.items():
                tops[name][c] = value
        return tops

    def _load(self, c: int, carry, tail) -> None:
        """Take chunk c in hand, its scorer's state at its start being ``carry`` and ``tail``."""
        self.start_carry, self.start_tail = carry, tail
        self.x_ext, self.y_steps, self.scored, self.u, self.carry, self.tail = self._build(c, carry, tail)
        self.chunk, (self.start, self.stop) = c, self._bounds(c)
        later = _row(self.suffix, 0 if self.selection == "global" else c + 1)
        self.later, self.later_windows = later, self._windows_of(later)
        if self.selection == "global":
            self.view = (later["u"], later["valid"], later["step"])
        else:
            self.view = (torch.cat([self.u, later["u"]], 1), torch.cat([self.scored, later["valid"]], 1),
                         torch.cat([self._positions(c), later["step"]], 1))

    def inputs(self, start: int, stop: int) -> torch.Tensor:
        """Inputs of the rollout [start, stop), which lies in one chunk; the next chunk is loaded on entry."""
        c = start // self.chunk_len
        if c != self.chunk:
            if c != self.chunk + 1:
                raise ValueError(f"a streamed batch is read in order: chunk {c} after chunk {self.chunk}")
            self._load(c, self.carry, self.tail)
        lead = self.context_len - 1 - self.start
        return self.x_ext[:, lead + start : lead + stop]

    def candidates(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scores, scored, positions): the chunk in hand's steps and S_{c+1} ("future"), or S_0 ("global")."""
        return self.view

    def targets(self, idx: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows and targets at the selector's columns ``idx`` (batch, P, K) of `candidates`."""
        later = self.later
        if self.selection == "global":
            return take_steps(self.later_windows, idx), take_steps(later["y"], idx)
        width = self.stop - self.start
        here = self._here(idx.clamp(max=width - 1), length)
        after = (idx - width).clamp(min=0)
        there = take_steps(self.later_windows, after), take_steps(later["y"], after)
        mine = idx < width
        return tuple(torch.where(mine.view(*idx.shape, *[1] * (a.dim() - mine.dim())), a, b)
                     for a, b in zip(here, there))

    def _windows_of(self, entries: dict) -> torch.Tensor:
        """The input windows (batch, K, context_len, d) of suffix entries, built from the plan: a window per
        valid entry (one sequence's steps k - context_len + 1 .. k), kept while the entry stays in view (the
        suffix top-K of neighbouring chunks share most entries). Not stored with the suffix lists, whose size
        would then grow with T times the window."""
        size, k = entries["step"].shape
        windows = self.x_ext.new_zeros(size, k, self.context_len, self.x_ext.shape[2])
        kept, cache, steps = self._window_cache, {}, entries["step"].tolist()
        for row, slot in entries["valid"].nonzero().tolist():
            step = steps[row][slot]
            if (row, step) not in kept:
                first = max(0, step - self.context_len + 1)
                x, _ = self.task.window(plan_rows(self.plan, slice(row, row + 1)), first, step + 1)
                kept[(row, step)] = x[0].to(self.device)
            cache[(row, step)] = window = kept[(row, step)]
            windows[row, slot, self.context_len - len(window):] = window
        self._window_cache = cache
        return windows

    def _here(self, local: torch.Tensor, length: int):
        return windows_at(self.x_ext, local + self.context_len - 1, length), take_steps(self.y_steps, local)

    def at_steps(self, steps: torch.Tensor, length: int):
        """Windows, targets and whether scored, at ``steps`` (batch, P, 1) of the rollout in hand."""
        local = steps - self.start
        return (*self._here(local, length), take_steps(self.scored, local))

    def detector_samples(self, samples: int, generator: torch.Generator | None, length: int):
        """As `HeldBatch.detector_samples`, from the pairs in view: the chunk in hand's scored steps and the
        suffix top-K after it (a task scored at its last step alone has no scored step in most chunks)."""
        here, later = self.scored.nonzero(), self.later["valid"].nonzero()
        mine, n = len(here), len(here) + len(later)
        if not n:
            return None
        pick = torch.randint(n, (samples,), generator=generator).to(self.device)
        parts = []
        if mine:
            at = here[pick.clamp(max=mine - 1)]
            parts.append((windows_at(self.x_ext, at[:, 1] + self.context_len - 1, length, rows=at[:, 0]),
                          self.y_steps[at[:, 0], at[:, 1]]))
        if len(later):
            at = later[(pick - mine).clamp(min=0, max=len(later) - 1)]
            parts.append((self.later_windows[at[:, 0], at[:, 1]], self.later["y"][at[:, 0], at[:, 1]]))
        if len(parts) == 1:
            return parts[0]
        first = pick < mine
        return tuple(torch.where(first.view(-1, *[1] * (a.dim() - 1)), a, b) for a, b in zip(*parts))

    def state_dict(self) -> dict:
        return {"streamed": {"plan": self.plan, "suffix": self.suffix, "chunk": self.chunk,
                             "carry": self.start_carry, "tail": self.start_tail, "scorer": self.scorer.state_dict()}}

    @classmethod
    def from_state(cls, state: dict, task, scorer: ChunkScorer, k: int, chunk_len: int, context_len: int,
                   selection: str, device="cpu") -> StreamedBatch:
        """The batch a checkpoint's `state_dict` describes, its chunk in hand built again from the plan."""
        scorer.load_state_dict(state["scorer"])
        batch = cls(task, state["plan"], scorer, k, chunk_len, context_len, selection, device, suffix=state["suffix"])
        if state["chunk"] > 0:
            batch._load(state["chunk"], state["carry"], state["tail"])
        return batch
