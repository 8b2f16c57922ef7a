"""The leaderboard: selection on validation, test scores of the selected configuration, longest T solved."""

import json

import pytest

from longrnn.cli import main
from longrnn.reporting.leaderboard import BEGIN, collect, entries, longest_solved, method_name
from longrnn.runs.config import RunConfig, to_toml


def fake_run(root, name, *, seq_len, lr, seed, val, test, gate=None, forget_init=None, task="adding", options=None):
    config = RunConfig()
    config.task.seq_len, config.train.lr, config.train.seed = seq_len, lr, seed
    config.task.name, config.task.options = task, options or {}
    config.model.gate, config.model.forget_init = gate, forget_init
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(to_toml(config))
    summary = {"status": "finished", "task": task, "seq_len": seq_len, "main_metric": "mse",
               "higher_is_better": False, "solved_at": 0.01, "baseline": {"mse": 0.167},
               "validation": {"mse": val}, "test": {"mse": test}, "wall_time_s": 10.0, "peak_memory_mb": 5.0,
               "steps": 100, "seed": seed}
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_selection_uses_validation_and_reports_the_selected_test_scores(tmp_path):
    # lr 0.01 has the better validation mean but the worse test mean: the leaderboard must pick it anyway
    for seed, (val, test) in enumerate([(0.004, 0.009), (0.006, 0.011)]):
        fake_run(tmp_path, f"a{seed}", seq_len=50, lr=0.01, seed=seed, val=val, test=test)
    for seed, (val, test) in enumerate([(0.02, 0.001), (0.03, 0.002)]):
        fake_run(tmp_path, f"b{seed}", seq_len=50, lr=0.001, seed=seed, val=val, test=test)
    fake_run(tmp_path, "c0", seq_len=100, lr=0.01, seed=0, val=0.5, test=0.5)
    rows = entries(collect([tmp_path]))
    assert [(e["seq_len"], e["n"]) for e in rows] == [(50, 2), (100, 1)]
    first = rows[0]
    assert first["val"] == pytest.approx(0.005) and first["test_mean"] == pytest.approx(0.01) and first["solved"] == 1
    assert longest_solved(rows) == {("lstm", "adding"): None}  # only 1 of 2 seeds solved at T=50
    fake_run(tmp_path, "d0", seq_len=20, lr=0.01, seed=0, val=0.001, test=0.001)
    assert longest_solved(entries(collect([tmp_path]))) == {("lstm", "adding"): 20}


def test_tasks_on_named_data_are_one_section_per_name(tmp_path):
    """Two systems (or data files) of one task are never ranked together: their scores are not comparable."""
    for name, system in (("a", "Rossler"), ("b", "Halvorsen")):
        fake_run(tmp_path, name, seq_len=50, lr=0.01, seed=0, val=0.1, test=0.1, task="dysts",
                 options={"system": system})
    fake_run(tmp_path, "c", seq_len=50, lr=0.01, seed=0, val=0.2, test=0.2, task="sequences",
             options={"data": "/x/JapaneseVowels.npz"})
    assert sorted(e["task"] for e in entries(collect([tmp_path]))) == [
        "dysts-Halvorsen", "dysts-Rossler", "sequences-JapaneseVowels"]


def test_task_variants_are_never_selected_across(tmp_path):
    """copy with 2 symbols is another task than copy with 10: a better validation score on the easier one
    must not stand for the method on the benchmark (the leaderboard once showed a 2-symbol LSTM score as
    its copy T=200 entry). The sizes of the fixed sets are not a variant."""
    fake_run(tmp_path, "ten", seq_len=200, lr=0.01, seed=0, val=0.3, test=0.3, task="copy",
             options={"validation_size": 500})
    fake_run(tmp_path, "ten-more", seq_len=200, lr=0.001, seed=0, val=0.4, test=0.4, task="copy",
             options={"test_size": 100})
    fake_run(tmp_path, "two", seq_len=200, lr=0.01, seed=0, val=0.01, test=0.01, task="copy",
             options={"recall": 2, "variable_delay": True})
    rows = entries(collect([tmp_path]))
    assert sorted((e["task"], e["n"], e["test_mean"]) for e in rows) == [
        ("copy", 1, 0.3), ("copy (recall=2, variable_delay=True)", 1, 0.01)]


def test_method_names_ignore_chrono_lengths_and_name_non_default_choices():
    config = RunConfig()
    assert method_name(config) == "lstm"
    config.model.gate, config.model.forget_init, config.train.trainer = "fast", "chrono:784", "tbptt"
    assert method_name(config) == "lstm, fast gate, chrono init, tbptt"
    config.train.warmup, config.train.reg, config.train.trainer = True, "mar", "memup"
    assert method_name(config) == "lstm, fast gate, chrono init, warm-up, mar reg, memup"
    config.model.double = True
    assert "double, partial warm-up" in method_name(config)
    config.train.warmup_partial = False
    assert "double, warm-up" in method_name(config)
    config.train.curriculum, config.train.init_from = "10:100", "runs/x"
    assert method_name(config).endswith("length curriculum, continued from a run, memup")
    config.model.readout_bias = False
    assert method_name(config).endswith("continued from a run, no readout bias, memup")


def test_the_page_keeps_its_prose_and_regenerates_its_table(tmp_path, capsys):
    fake_run(tmp_path / "runs", "a0", seq_len=50, lr=0.01, seed=0, val=0.004, test=0.005)
    page = tmp_path / "leaderboard.md"
    page.write_text("# Leaderboard\n\nOur protocol.\n")
    for _ in range(2):
        assert main(["report", "--leaderboard", str(tmp_path / "runs"), "--page", str(page)]) == 0
    text = page.read_text()
    assert text.count(BEGIN) == 1 and "Our protocol." in text
    assert "| 50 | lstm | 0.005 ± 0 mse | 1 | 1/1 | 0.167 |" in text
    assert "| lstm | adding | 50 | 50 |" in text
