"""Dynamical-systems reconstruction as a task: predict the next observation of a simulated system.

Tasks ``lorenz63``, ``bursting`` and ``hindmarsh_rose`` (systems in `longrnn.dsr.systems`). The data are
made once by `longrnn.dsr.make_data` (seeded by ``data_seed``, independent of the run's seed): one
training trajectory of ``length`` samples (``n_train`` of them if asked), one validation and one test
trajectory from other initial conditions, standardised with the training statistics; ``noise`` adds
observation noise (standard deviation in standardised units) to the training trajectory only.

A sample is a window w of ``seq_len + 1`` consecutive observations at a random place of a training
trajectory: x = w_0 … w_{T−1} is the input, y = w_1 … w_T the target (readout on every step), so a
model fed x predicts each next observation. ``--trainer bptt`` is then classical (one-step) teacher
forcing; ``--trainer teacher_forcing`` runs the sparse / generalised forcing of
`longrnn.dsr.rollout.forced_rollout` on the same windows. Validation and test sets are evenly spaced
windows of the validation / test trajectories.

Metric ``mse``: the one-step-ahead MSE (model selection uses it; the reconstruction measures, D_stsp,
D_H and PE(n), come from ``longrnn dsr eval``). Baseline: persistence, x̂_{t+1} = x_t, the best guess
that keeps no state; its MSE is scored on the same windows (there is no closed form).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from longrnn.dsr import DSRData, make_data
from longrnn.errors import UsageError, check_positive
from longrnn.tasks.base import SquaredErrorLoss, Task
from longrnn.tasks.registry import register


class DynamicalSystemTask(SquaredErrorLoss, Task):
    system: str
    readout = "all"
    main_metric = "mse"
    higher_is_better = False
    external_inputs = 0  # K: the trajectories' last K columns are inputs beside the observations, not predicted
    test_inputs = None  # (length, K) the external inputs along the test trajectory, when K > 0

    def __init__(
        self,
        seq_len: int = 200,
        length: int | None = None,
        noise: float = 0.0,
        n_train: int = 1,
        data_seed: int = 0,
        validation_size: int = 64,
        test_size: int = 64,
    ):
        super().__init__(validation_size=validation_size, test_size=test_size)
        check_positive("seq_len", seq_len)
        check_positive("validation_size", validation_size)
        check_positive("test_size", test_size)
        self.seq_len = seq_len
        self.data = self.make_data(n_train, length, noise, data_seed)
        if min(self.data.train.shape[1], self.data.test.shape[1]) <= seq_len:
            raise UsageError(f"seq_len must be below the trajectory length {self.data.train.shape[1]}, got {seq_len}")
        self.input_size = self.output_size = self.data.train.shape[-1]

    def make_data(self, n_train: int, length: int | None, noise: float, data_seed: int) -> DSRData:
        """``n_train`` training trajectories and two held-out ones (validation, test) of the system."""
        return make_data(self.system, n_train=n_train, n_test=2, length=length, noise=noise, seed=data_seed)

    def _windows(self, trajectory: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of seq_len + 1 samples of a (n, length, d) tensor at (trajectory, start) pairs."""
        which, start = starts
        offsets = torch.arange(self.seq_len + 1)
        w = trajectory[which[:, None], start[:, None] + offsets]
        return w[:, :-1], w[:, 1:, : w.shape[-1] - self.external_inputs]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, length, _ = self.data.train.shape
        which = torch.randint(0, n, (batch_size,), generator=generator)
        start = torch.randint(0, length - self.seq_len, (batch_size,), generator=generator)
        return self._windows(self.data.train, (which, start))

    def _evenly_spaced(self, trajectory: torch.Tensor, size: int):
        start = torch.linspace(0, trajectory.shape[0] - self.seq_len - 1, size).long()
        return self._windows(trajectory[None], (torch.zeros_like(start), start))

    @property
    def validation_trajectory(self) -> torch.Tensor:
        """(length, d): the held-out trajectory whose windows are the validation set."""
        return self.data.test[0]

    @property
    def test_trajectory(self) -> torch.Tensor:
        """(length, d): the held-out trajectory whose windows are the test set; `longrnn dsr eval` compares
        free-running generation with it."""
        return self.data.test[1]

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if "validation" not in self._cache:
            self._cache["validation"] = self._evenly_spaced(self.validation_trajectory, self.validation_size)
        return self._cache["validation"]

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if "test" not in self._cache:
            self._cache["test"] = self._evenly_spaced(self.test_trajectory, self.test_size)
        return self._cache["test"]

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        return {"mse": float(F.mse_loss(y_pred, y_true))}

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] - self.external_inputs].clone()

    def expected_baseline(self) -> dict[str, float]:
        return self.baseline("validation")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq_len={self.seq_len}, length={self.data.train.shape[1]})"


@register("lorenz63", "next-step prediction of Lorenz-63 (dt 0.01, standardised) for reconstruction")
class Lorenz63(DynamicalSystemTask):
    system = "lorenz63"


@register("bursting", "next-step prediction of the rPLRNN paper's bursting neuron (0.5 ms, its noise)")
class Bursting(DynamicalSystemTask):
    system = "bursting"


@register("hindmarsh_rose", "next-step prediction of the Hindmarsh-Rose burster (dt 0.1, standardised)")
class HindmarshRose(DynamicalSystemTask):
    system = "hindmarsh_rose"
