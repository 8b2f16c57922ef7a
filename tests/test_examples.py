"""Every script in examples/ runs from a clean interpreter at its --tiny size and reports its result."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
LAST_LINE = {
    "fast_gate_classifier.py": "test accuracy",
    "memup_long_sequences.py": "test accuracy at the last step",
    "plrnn_penalty.py": "held-out one-step MSE",
    "warm_up_nbrc.py": "warmed up: test MSE",
}


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES} == set(LAST_LINE)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_runs(script):
    result = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(LAST_LINE[script.name]), result.stdout
