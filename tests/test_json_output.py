"""--json: one JSON object on stdout and nothing else there, for train, eval, report, bench and sweeps."""

import json

import pytest

from longrnn.cli import main

TINY = ["--task", "adding", "--seq-len", "8", "--cell", "gru", "--hidden-size", "4", "--steps", "4",
        "--eval-every", "2", "--batch-size", "4", "--threads", "1", "--no-diagnostics"]


def one_object(capsys) -> dict:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one line: one object
    return json.loads(out)


@pytest.fixture
def run_dir(tmp_path, capsys):
    assert main(["train", *TINY, "--out", str(tmp_path / "runs"), "--name", "r", "--json"]) == 0
    summary = one_object(capsys)
    assert summary["status"] == "finished" and summary["steps"] == 4 and "mse" in summary["test"]
    return tmp_path / "runs" / "r"


def test_train_eval_and_report_print_one_object(run_dir, tmp_path, capsys):
    assert main(["eval", str(run_dir), "--json", "--split", "test"]) == 0
    (result,) = one_object(capsys)["runs"]
    assert result["run"] == str(run_dir) and set(result["test"]) >= {"mse"}
    assert main(["report", str(run_dir.parent), "--out", str(tmp_path / "rep"), "--no-plots", "--json"]) == 0
    report = one_object(capsys)
    assert report["damaged"] == [] and len(report["runs"]) == 1 and report["configurations"][0]["n"] == 1


def test_non_finite_numbers_are_null_not_invalid_json(run_dir, capsys):
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["test"]["mse"] = float("nan")
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(run_dir.parent), "--out", str(run_dir.parent / "rep"), "--no-plots", "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and json.loads(out)["runs"][0]["summary"]["test"]["mse"] is None


def test_bench_speed_prints_one_object(capsys):
    assert main(["bench", "speed", "--cells", "rnn", "--seq-len", "5", "--batch-size", "2", "--hidden-size", "4",
                 "--input-size", "2", "--repeats", "1", "--warmup-rounds", "0", "--quiet", "--json"]) == 0
    result = one_object(capsys)
    assert "B=2, T=5" in result["setup"] and any(row["variant"].startswith("rnn") for row in result["rows"])


def test_a_sweep_prints_one_object(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'out = "{tmp_path / "runs"}"\nresults = "{tmp_path / "page.md"}"\nseeds = [0]\n'
                    '[base.task]\nname = "adding"\nseq_len = 5\n[base.model]\nhidden_size = 4\n'
                    '[base.train]\nsteps = 2\neval_every = 2\nbatch_size = 4\nthreads = 1\n'
                    '[grid]\n"model.cell" = ["gru", "rnn"]\n')
    assert main(["sweep", str(grid), "--quiet", "--no-plots", "--json"]) == 0
    result = one_object(capsys)
    assert result == {"sweep": "grid", "runs": 2, "finished": 2, "page": str(tmp_path / "page.md"), "failed": []}


def test_bench_memory_prints_one_object_and_its_progress_on_stderr(capsys):
    assert main(["bench", "memory", "--trainer", "bptt", "tbptt", "--seq-len", "5", "--steps", "1", "--hidden-size",
                 "4", "--batch-size", "2", "--threads", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and len(json.loads(out)["rows"]) == 2
    assert "bptt T=5" in err  # progress is for the person watching, on stderr


def test_eval_of_a_folder_scores_the_runs_it_can_and_names_the_rest(run_dir, tmp_path, capsys):
    import shutil

    shutil.copytree(run_dir, run_dir.parent / "diverged")
    (run_dir.parent / "diverged" / "model.pt").unlink()  # diverged before its first evaluation: no weights
    assert main(["eval", str(run_dir.parent), "--json", "--split", "test"]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert [r["run"] for r in result["runs"]] == [str(run_dir)] and "diverged" in result["not_scored"][0]
    assert err.startswith("longrnn: warning: not scored: ") and "has no model.pt" in err
