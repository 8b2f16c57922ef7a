"""Copy tasks: reproduce inputs seen long ago.

``copy`` (Arjovsky, Shah & Bengio 2016, "Unitary evolution RNNs", after Hochreiter & Schmidhuber 1997),
with delay T = ``seq_len``. The input has T + 20 steps:

    10 symbols drawn uniformly from {0..7}, T - 1 blanks (8), the delimiter (9), 10 blanks (8)

one-hot encoded over 10 categories: x (batch, T + 20, 10) float. The target y (batch, T + 20) long is a
blank for the first T + 10 steps, then the 10 symbols in order. The model reads out at every step with 9
classes (0..8), so y_pred is (batch, T + 20, 9); the loss is cross-entropy averaged over all steps.
Metrics: ``ce`` and ``accuracy``, the fraction of the 10 recalled symbols predicted right (the target is a
symbol, not a blank, exactly at the recall steps). Solved at accuracy 0.99.

With ``variable_delay=True`` the length stays T + 20, but each sequence draws its own delay d uniformly
from {1..T}: 10 symbols, d - 1 blanks, the delimiter, the 10 recall steps, then T - d blanks to fill.
d = T gives the fixed layout above.

``recall`` (default 10, the benchmark's) sets how many symbols are copied: the input has T + 2·recall
steps (recall symbols, T - 1 blanks, the delimiter, recall blanks). Fewer symbols make a small copy
task for quick checks; every published number is for 10.

Note: the task's ``seq_len`` attribute is the input length T + 20; the delay is ``delay``.

Baseline (the canonical memoryless strategy, Arjovsky et al. 2016): output a blank with certainty until
the delimiter, then a uniform distribution over the 8 symbols for the 10 recall steps. Its cross-entropy
is 10 ln 8 / (T + 20) and its accuracy 1/8. The same formula is used with variable delays, where the
strategy is granted knowledge of when to recall (it still cannot know what).

``scattered_copy`` (defined here; the MemUP paper reports a "Scattered Copy" whose definition could not be
read, see ../shared/research/memup.md §3): the layout of ``copy`` with fixed delay, but the 10 symbols sit
at 10 distinct steps drawn uniformly from the T + 9 steps before the delimiter, blanks elsewhere; the recall
steps want them in the order they appeared. The gap between a symbol and its recall is anything from 1 to
T + 18 steps, and the model must also remember the order. Baseline and metrics as for ``copy``.

``copy_first`` (Lambrechts, De Geeter, Vecoven, Ernst & Drion 2023, warm-up paper; code
``glambrechts/warmup`` ``datasets.py``, after the BRC paper): x ~ N(0, 1) of shape (batch, T, 1); the
target y (batch, 1) is x[:, 0], read at the last step; MSE. Baseline: predict 0, MSE E[x^2] = 1. Solved at
MSE 0.05.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from longrnn.errors import check_bool, check_positive
from longrnn.tasks.base import SquaredErrorLoss, Task
from longrnn.tasks.registry import register
from longrnn.tasks.streaming import noise, noise_keys, step_range

N_SYMBOLS = 8  # symbols 0..7
BLANK = 8
DELIMITER = 9
N_RECALL = 10  # symbols to remember (the benchmark's; the `recall` option changes it)


@register("copy", "recall 10 symbols after a delay of seq_len steps (Arjovsky et al. 2016)")
class Copy(Task):
    input_size = N_SYMBOLS + 2
    output_size = N_SYMBOLS + 1
    readout = "all"
    main_metric = "accuracy"
    higher_is_better = True
    solved_at = 0.99

    def __init__(
        self,
        seq_len: int = 100,
        variable_delay: bool = False,
        recall: int = N_RECALL,
        validation_size: int = 1000,
        test_size: int = 2000,
    ):
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.delay = check_positive("seq_len", seq_len)
        self.variable_delay = check_bool("variable_delay", variable_delay)
        self.recall = check_positive("recall", recall)
        self.seq_len = seq_len + 2 * recall

    def delays(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(batch,) long: steps from the last symbol to the delimiter, in 1..T."""
        if self.variable_delay:
            return torch.randint(1, self.delay + 1, (batch_size,), generator=generator)
        return torch.full((batch_size,), self.delay, dtype=torch.long)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.window(self.plan(batch_size, generator), 0, self.seq_len)

    def plan(self, batch_size: int, generator: torch.Generator) -> dict:
        """The symbols (batch, recall) and the delimiter's step (batch,) of each sequence (streaming.py)."""
        symbols = torch.randint(0, N_SYMBOLS, (batch_size, self.recall), generator=generator)
        return {"symbols": symbols, "delimiter_at": self.recall - 1 + self.delays(batch_size, generator)}

    def window(self, plan: dict, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        steps = step_range(start, stop, self.seq_len)
        symbols, delimiter_at = plan["symbols"], plan["delimiter_at"].unsqueeze(1)
        tokens = torch.full((len(symbols), len(steps)), BLANK, dtype=torch.long)
        head = steps < self.recall
        tokens[:, head] = symbols[:, steps[head]]
        tokens[steps == delimiter_at] = DELIMITER
        return self._one_hot(tokens), self._recall_targets(symbols, steps - delimiter_at)

    def _recall_targets(self, symbols: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """(batch, steps) long: symbol k at the k-th step after the delimiter (``after`` = k), blank elsewhere."""
        recall = (after >= 1) & (after <= self.recall)
        recalled = symbols.gather(1, (after - 1).clamp(0, self.recall - 1))
        return torch.where(recall, recalled, torch.full_like(recalled, BLANK))

    def _one_hot(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*tokens.shape, self.input_size).scatter_(2, tokens.unsqueeze(-1), 1.0)

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(y_pred.reshape(-1, self.output_size), y_true.reshape(-1))

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each step; every step is scored (blanks included), as in `loss`."""
        per = F.cross_entropy(y_hat.reshape(-1, self.output_size), y_steps.reshape(-1), reduction="none")
        return per.reshape(y_steps.shape)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        recall = y_true != BLANK
        hits = y_pred.argmax(dim=-1)[recall] == y_true[recall]
        return {"ce": float(self.loss(y_pred, y_true)), "accuracy": float(hits.float().mean())}

    @torch.no_grad()
    def metric_sums(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, tuple[float, int]]:
        recall = y_true != BLANK
        hits = y_pred.argmax(dim=-1)[recall] == y_true[recall]
        ce = (float(self.step_loss(y_pred, y_true).sum()), y_true.numel())
        return {"loss": ce, "ce": ce, "accuracy": (float(hits.sum()), int(recall.sum()))}

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: a sure blank everywhere but the recall steps after the delimiter, uniform symbols there."""
        delimiter_at = x[..., DELIMITER].argmax(dim=1, keepdim=True)
        after = torch.arange(self.seq_len) - delimiter_at
        recall = (after >= 1) & (after <= self.recall)
        sure = torch.full((self.output_size,), -1e4).index_fill_(0, torch.tensor(BLANK), 0.0)
        uniform = torch.zeros(self.output_size).index_fill_(0, torch.tensor(BLANK), -1e4)
        return torch.where(recall.unsqueeze(-1), uniform, sure)

    def expected_baseline(self) -> dict[str, float]:
        return {"ce": self.recall * math.log(N_SYMBOLS) / self.seq_len, "accuracy": 1 / N_SYMBOLS}

    def __repr__(self) -> str:
        return f"Copy(seq_len={self.delay}, variable_delay={self.variable_delay}, recall={self.recall})"


@register("scattered_copy", "recall 10 symbols scattered over seq_len + 9 steps, in order (defined in copy.py)")
class ScatteredCopy(Copy):
    def __init__(self, seq_len: int = 100, recall: int = N_RECALL, validation_size: int = 1000, test_size: int = 2000):
        super().__init__(seq_len, variable_delay=False, recall=recall, validation_size=validation_size,
                         test_size=test_size)

    can_stream = False  # its plan draws a (batch, T) permutation key: memory would grow with T

    def plan(self, batch_size: int, generator: torch.Generator) -> dict:
        """The symbols (batch, recall) and their steps (batch, recall), in time order (streaming.py)."""
        before = self.seq_len - self.recall - 1  # steps before the delimiter: T + recall - 1
        where = torch.rand(batch_size, before, generator=generator).argsort(dim=1)[:, : self.recall].sort(dim=1).values
        symbols = torch.randint(0, N_SYMBOLS, (batch_size, self.recall), generator=generator)
        return {"symbols": symbols, "where": where}

    def window(self, plan: dict, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        steps = step_range(start, stop, self.seq_len)
        symbols, where = plan["symbols"], plan["where"]
        delimiter_at = self.seq_len - self.recall - 1
        tokens = torch.full((len(symbols), len(steps)), BLANK, dtype=torch.long)
        at = where.unsqueeze(1) == steps.view(1, -1, 1)  # (batch, steps, recall): symbol j sits at this step
        placed = at.any(dim=2)
        tokens[placed] = symbols.unsqueeze(1).expand_as(at)[at]
        tokens[:, steps == delimiter_at] = DELIMITER
        return self._one_hot(tokens), self._recall_targets(symbols, (steps - delimiter_at).expand(len(symbols), -1))

    def __repr__(self) -> str:
        return f"ScatteredCopy(seq_len={self.delay}, recall={self.recall})"


@register("copy_first", "recall the first N(0,1) input at the last step (warm-up paper, BRC)")
class CopyFirst(SquaredErrorLoss, Task):
    input_size = 1
    output_size = 1
    readout = "last"
    main_metric = "mse"
    higher_is_better = False
    solved_at = 0.05

    def __init__(self, seq_len: int = 100, validation_size: int = 1000, test_size: int = 2000):
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.seq_len = check_positive("seq_len", seq_len)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(batch_size, self.seq_len, 1, generator=generator)
        return x, x[:, 0].clone()

    def plan(self, batch_size: int, generator: torch.Generator) -> dict:
        """The first value (batch, 1) and a noise key (batch,) of each sequence (streaming.py); a
        streamed sequence is another draw than `sample`'s (see tasks/base.py)."""
        return {"first": torch.randn(batch_size, 1, generator=generator), "noise": noise_keys(batch_size, generator)}

    def window(self, plan: dict, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        step_range(start, stop, self.seq_len)
        x = noise(plan["noise"], start, stop)
        if start == 0:
            x[:, 0] = plan["first"]
        return x, plan["first"].clone()

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        return {"mse": float(F.mse_loss(y_pred, y_true))}

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1)

    def expected_baseline(self) -> dict[str, float]:
        return {"mse": 1.0}
