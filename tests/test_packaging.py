"""What a fresh clone and an install get: every source file is one git keeps, one version everywhere."""

import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest

import longrnn

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_no_source_file_is_ignored_by_git():
    """A pattern in .gitignore once matched the package folder src/longrnn/runs/: a clone lacked it."""
    package = ROOT / "src" / "longrnn"
    sources = [str(p.relative_to(ROOT)) for p in package.rglob("*.py") if "__pycache__" not in p.parts]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == []


def test_the_version_is_defined_once():
    assert importlib.metadata.version("longrnn") == longrnn.__version__
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[project]")[1].split("[")[0]


def test_the_public_api_is_importable_from_the_package():
    for name in longrnn.__all__:
        assert getattr(longrnn, name) is not None
    assert set(longrnn.__all__) <= set(dir(longrnn))
    with pytest.raises(AttributeError, match="no attribute 'lstm'"):
        longrnn.lstm  # noqa: B018
