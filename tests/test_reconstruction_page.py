"""A sweep on a dynamical system scores every run's reconstruction and its page shows the scores and attractors."""

import json
import math
import re
import shutil

import numpy as np
import pytest

from longrnn.cli import main
from longrnn.reporting.formatting import seeds_text
from longrnn.reporting.reconstruction_page import _median_seed

SWEEP = """
name = "tiny-dsr"
description = "A tiny reconstruction grid for the tests."
results = "{root}/page.md"
out = "{root}/runs"
seeds = [0, 1]

[base.train]
trainer = "teacher_forcing"
tf_interval = 5
steps = 6
eval_every = 3
batch_size = 4
threads = 1

[base.model]
hidden_size = 6
options = {{ output = "relu" }}

[[tasks]]
label = "Lorenz-63"
task = {{ name = "lorenz63", seq_len = 20, options = {{ length = 400, validation_size = 8, test_size = 8 }} }}

[[variants]]
label = "PLRNN"
model = {{ cell = "plrnn" }}

[[variants]]
label = "rPLRNN tau=1"
model = {{ cell = "plrnn", options = {{ output = "relu", init = "identity", integrators = 0.5 }} }}
train = {{ reg = "mar", tau = 1.0 }}
"""


@pytest.fixture
def reproduced(tmp_path):
    path = tmp_path / "dsr.toml"
    path.write_text(SWEEP.format(root=tmp_path))
    assert main(["reproduce", str(path), "--quiet"]) == 0
    return tmp_path


def test_a_dsr_sweep_scores_every_run_and_draws_its_attractors(reproduced):
    runs = sorted((reproduced / "runs").iterdir())
    assert len(runs) == 4
    for run in runs:
        result = json.loads((run / "summary.json").read_text())["reconstruction"]
        assert set(result) >= {"state_space_divergence", "power_spectrum_distance", "prediction_error_20"}
        assert np.load(run / "generated.npy").shape == (400, 3)
        assert not (run / "attractor.png").exists()  # per-run pictures are for `longrnn dsr eval`
    text = (reproduced / "page.md").read_text()
    assert "Reconstruction, Lorenz-63" in text
    assert re.search(r"\| rPLRNN tau=1 \| \d/2 \| ", text)
    for kind in ("attractors", "scores"):
        assert f"(page_{kind}.png)" in text
        assert (reproduced / f"page_{kind}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_page_is_regenerated_from_committed_files_without_weights(reproduced):
    for weights in (reproduced / "runs").glob("*/*.pt"):
        weights.unlink()
    shutil.copy(reproduced / "page.md", reproduced / "before.md")
    (reproduced / "page_attractors.png").unlink()
    assert main(["reproduce", str(reproduced / "dsr.toml"), "--report-only", "--quiet"]) == 0
    assert (reproduced / "page_attractors.png").exists()
    assert (reproduced / "page.md").read_text() == (reproduced / "before.md").read_text()


def test_undefined_scores_are_shown_per_seed_and_left_out_of_the_mean():
    assert seeds_text([1.0, math.nan, 3.0]) == "2 ± 1.4 (1, nan, 3)"
    assert seeds_text([math.nan]) == "undefined (nan)"
    runs = [{"summary": {"reconstruction": {"state_space_divergence": d}}, "seed": s}
            for s, d in enumerate([5.0, math.nan, 1.0])]
    assert _median_seed(runs)["seed"] == 0  # ranked 1, 5, undefined: the median is 5
