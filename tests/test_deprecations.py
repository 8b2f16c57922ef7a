"""Names renamed or moved in 0.2.0 still work for one release, and each use says what replaced it:
old import paths (DeprecationWarning), config keys and flags (one line naming the new name)."""

import hashlib
import importlib
import json
import subprocess
import sys

import pytest

from longrnn._deprecated import MOVED
from longrnn.cli import build_parser
from longrnn.errors import LongrnnDeprecationWarning
from longrnn.runs.config import RENAMED, RunConfig, load, set_key, to_toml


@pytest.mark.parametrize(("old", "new"), MOVED.items())
def test_an_old_import_path_warns_and_is_the_new_module(old, new):
    sys.modules.pop(old, None)
    message = f"{old} is deprecated; import {new} instead .the old path goes in 0.3.0."
    with pytest.warns(DeprecationWarning, match=message):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_an_old_import_warns_in_a_fresh_process_at_the_importing_line():
    code = "from longrnn.warmup import warm_up, vaa_star"
    result = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.count("DeprecationWarning") == 1 and "longrnn.methods.warmup" in result.stderr
    assert result.stderr.startswith("<string>:1:")  # points at the user's import, not into longrnn


def test_an_old_config_key_sets_the_new_one_with_a_message():
    config = RunConfig()
    with pytest.warns(LongrnnDeprecationWarning, match="train.warmup_steps is deprecated; use train.lr_warmup_steps"):
        set_key(config, "train.warmup_steps", 7)
    assert config.train.lr_warmup_steps == 7
    assert "\nwarmup_steps" not in to_toml(config) and "\nlr_warmup_steps = 7\n" in to_toml(config)


def test_an_experiment_file_with_an_old_key_loads_with_a_message(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text("[train]\nwarmup_steps = 11\nschedule = \"cosine\"\n")
    with pytest.warns(LongrnnDeprecationWarning, match="lr_warmup_steps"):
        config = load(path)
    assert config.train.lr_warmup_steps == 11 and config.train.schedule == "cosine"


def test_an_old_run_directory_loads_silently(tmp_path, recwarn):
    from longrnn import runs

    (tmp_path / runs.CONFIG).write_text(to_toml(RunConfig()).replace("lr_warmup_steps", "warmup_steps"))
    assert "\nwarmup_steps = 0" in (tmp_path / runs.CONFIG).read_text()
    assert runs.read_config(tmp_path).train.lr_warmup_steps == 0
    assert not [w for w in recwarn if issubclass(w.category, LongrnnDeprecationWarning)]


def test_a_renamed_key_keeps_the_identity_it_had_under_its_old_name():
    config = RunConfig()
    config.train.lr_warmup_steps = 7
    old_hash = hashlib.sha1(json.dumps({"train": {"warmup_steps": 7}}, sort_keys=True).encode()).hexdigest()[:8]
    assert config.identity() == old_hash
    assert RunConfig().identity() != old_hash
    assert set(RENAMED) == {"train.warmup_steps"}


@pytest.mark.parametrize(
    ("argv", "dest", "new"),
    [
        (["train", "--warmup-steps", "5"], "train.lr_warmup_steps", "--lr-warmup-steps"),
        (["bench", "speed", "--warmup", "0"], "warmup_rounds", "--warmup-rounds"),
        (["bench", "convexp", "--warmup", "0"], "warmup_rounds", "--warmup-rounds"),
        (["dsr", "eval", "RUN", "--warmup", "0"], "burn_in", "--burn-in"),
    ],
)
def test_an_old_flag_stores_the_new_one_with_a_message(argv, dest, new):
    with pytest.warns(LongrnnDeprecationWarning, match=f"{argv[-2]} is deprecated; use {new}"):
        args = build_parser().parse_args(argv)
    assert vars(args)[dest] == int(argv[-1])
    new_argv = [*argv[:-2], new, argv[-1]]
    assert vars(build_parser().parse_args(new_argv))[dest] == int(argv[-1])


def test_the_command_prints_one_line_for_an_old_flag_and_trains(tmp_path):
    argv = ["train", "--task", "adding", "--seq-len", "5", "--hidden-size", "4", "--steps", "2", "--eval-every", "2",
            "--batch-size", "4", "--threads", "1", "--quiet", "--warmup-steps", "3", "--out", str(tmp_path)]
    code = "import sys; from longrnn.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert warning == ["longrnn: warning: --warmup-steps is deprecated; use --lr-warmup-steps "
                       "(the old name goes in 0.3.0)"]
    (run_dir,) = tmp_path.iterdir()
    assert "lr_warmup_steps = 3" in (run_dir / "config.toml").read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--lr-warmup-steps", "3", "--warmup-steps", "3"],
        ["train", "--warmup-steps=7", "--lr-warmup-steps=3"],
        ["bench", "speed", "--warmup", "1", "--warmup-rounds", "2"],
        ["dsr", "eval", "RUN", "--burn-in", "5", "--warmup", "5"],
    ],
)
def test_an_old_flag_beside_its_new_name_is_refused(argv, capsys):
    from longrnn.cli import main

    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("longrnn: error: --warmup") and "are the same setting; give only --" in error


def test_an_old_and_a_new_key_with_different_values_are_refused(tmp_path):
    from longrnn.errors import UsageError

    path = tmp_path / "both.toml"
    path.write_text("[train]\nwarmup_steps = 3\nlr_warmup_steps = 4\n")
    with pytest.raises(UsageError, match="warmup_steps = 3 and lr_warmup_steps = 4; .* keep only lr_warmup_steps"):
        load(path)
