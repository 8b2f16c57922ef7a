"""Reference accuracies for docs/results/uea.md, measured here with aeon on the archives' own splits.

For each archive of experiments/uea.toml: 1-NN with dynamic time warping (full window; the archives'
standard straw man, Bagnall et al.) and, where the sequences have one length, ROCKET (Dempster et al.
2020; 10,000 random kernels, aeon's defaults, random_state 0). Both train on the whole training split
(the recurrent models hold 20% of it out for validation) and score the test split once. Prints a
Markdown table for the page's hand-written part.

    python scripts/uea_references.py        (needs the extra [ts]; about a minute on one core)
"""

from __future__ import annotations

import warnings

import numpy as np
from aeon.classification.convolution_based import RocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_classification

ARCHIVES = ["JapaneseVowels", "ItalyPowerDemand", "BasicMotions"]


def accuracy(classifier, x_train, y_train, x_test, y_test) -> float:
    classifier.fit(x_train, y_train)
    return float(np.mean(classifier.predict(x_test) == y_test))


def main() -> None:
    warnings.simplefilter("ignore")  # numba's type-safety remarks inside aeon's DTW
    print("| archive | 1-NN DTW | ROCKET |")
    print("|---|---|---|")
    for name in ARCHIVES:
        x_train, y_train = load_classification(name, split="train")
        x_test, y_test = load_classification(name, split="test")
        dtw = accuracy(KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1), x_train, y_train, x_test, y_test)
        equal = isinstance(x_train, np.ndarray)
        rocket = accuracy(RocketClassifier(n_kernels=10_000, random_state=0), x_train, y_train, x_test, y_test) \
            if equal else None
        print(f"| {name} | {dtw:.3f} | {'—' if rocket is None else f'{rocket:.3f}'} |")


if __name__ == "__main__":
    main()
