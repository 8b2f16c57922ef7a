"""Bad values get one line naming them and exit status 2, for every numeric flag of `train` (the table is
generated from the config, so a new flag cannot be forgotten) and for the other commands' flags."""

import dataclasses
from pathlib import Path

import pytest

from longrnn.cli import main
from longrnn.runs.config import RANGES, SECTIONS, field_type, flag_name


def _numeric_train_flags():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            if f.name != "options" and field_type(cls, f.name) in (int, float):
                yield key, field_type(cls, f.name)


NUMERIC = list(_numeric_train_flags())


def _bad_values(key, kind):
    low, high = RANGES[key].low, RANGES[key].high
    values = [str(low - 1) if kind is int else str(low - 0.5)]  # below the range
    if high is not None:
        values.append(str(high + 1) if kind is int else str(high + 0.5))  # above it
    if kind is float:
        values += ["nan", "inf"]
    return values


CASES = [(key, value) for key, kind in NUMERIC for value in _bad_values(key, kind)]


def test_every_numeric_key_has_a_documented_range():
    assert {key for key, _ in NUMERIC} == set(RANGES)


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_every_numeric_train_flag_refuses_a_bad_value_in_one_line(tmp_path, capsys, key, value):
    assert main(["train", f"--{flag_name(key)}", value, "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("longrnn: error: "), captured.err
    assert (key in lines[0] or f"--{flag_name(key)}" in lines[0]) and "Traceback" not in captured.err
    assert not list(tmp_path.iterdir())  # refused before a run directory is made


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--steps", "abc"], "--steps: invalid int value: 'abc'"),
        (["train", "--set", "train.clip=nan"], "train.clip must be a finite number, got nan"),
        (["train", "--hidden-size", "100000", "--steps", "1"], "asks for 149 GiB for one weight"),
        (["train", "--set", "model.cel=gru"], "cell 'lstm' has no option 'cel'"),
        (["bench", "speed", "--repeats", "0"], "repeats must be a positive integer, got 0"),
        (["bench", "convexp", "--stencil", "2"], "stencil must be odd"),
        (["dsr", "eval", "RUN", "--pe-steps", "0"], "--pe-steps must be a positive integer, got 0"),
        (["dsr", "eval", "RUN", "--smoothing", "nan"], "--smoothing must be a finite number"),
        (["eval", "RUN", "--threads", "-1"], "--threads must be in [0, 1024], got -1"),
        (["eval", "RUN", "--threads", "5000"], "--threads must be in [0, 1024], got 5000"),
        (["bench", "speed", "--threads", "5000"], "--threads must be in [1, 1024], got 5000"),
        (["reproduce", ""], "no experiment ''"),
        ([], "the following arguments are required: command"),
    ],
)
def test_other_bad_input_is_one_line(tmp_path, capsys, argv, named):
    argv = [str(tmp_path) if a == "RUN" else a for a in argv]
    code = main([*argv, "--out", str(tmp_path / "out")] if argv[:1] == ["train"] else argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], captured.err


def test_an_out_folder_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--steps", "1", "--out", str(tmp_path / "file" / "runs")]) == 2
    assert "cannot make the run directory" in capsys.readouterr().err


def test_a_sweep_with_a_misspelt_key_fails_before_any_run_starts(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('out = "%s"\nseeds = [0, 1]\n[base.task]\nname = "adding"\nseq_len = 5\n'
                    '[grid]\n"model.cel" = ["lstm", "gru"]\n' % (tmp_path / "runs"))
    assert main(["sweep", str(grid), "--quiet"]) == 2
    assert "has no option 'cel'" in capsys.readouterr().err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("grid", "named"), [
    ('"model.hidden_size" = [4, 1000000]', "not enough memory"),
    ('"train.trainer" = ["bptt", "memup"]', "memup_targets (10) must be at most the sequence length (5)"),
    ('"train.init_from" = ["", "{tmp}/nonexistent"]', "nonexistent"),
    ('"train.reg" = ["none", "mar"]', "--reg mar needs a cell with parameters A, W, h"),
    ('"train.device" = ["cpu", "cuda"]', "device 'cuda' is not available"),
    ('"model.options" = [{}, {integrators = 0.5}]', "integrators (0.5) applies to init 'identity'"),
])
def test_every_value_a_sweep_would_refuse_fails_before_any_run_starts(tmp_path, capsys, grid, named):
    """Each of these started the grid's first run and was recorded as a failure; train refuses each."""
    if "cuda" in grid and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    cell = "plrnn" if "integrators" in grid else "lstm"
    path = tmp_path / "grid.toml"
    path.write_text(f'out = "{tmp_path / "runs"}"\nresults = "{tmp_path / "page.md"}"\nseeds = [0]\n'
                    f'[base.task]\nname = "adding"\nseq_len = 5\n[base.model]\ncell = "{cell}"\nhidden_size = 4\n'
                    '[base.train]\nsteps = 2\neval_every = 2\nbatch_size = 4\nthreads = 1\n'
                    f'[grid]\n{grid.replace("{tmp}", str(tmp_path))}\n')
    assert main(["sweep", str(path), "--quiet", "--no-plots"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "runs").exists()


def test_a_sweep_whose_results_page_is_a_folder_is_refused_when_read(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text(f'out = "{tmp_path / "runs"}"\nresults = "{tmp_path}"\n[base.task]\nname = "adding"\n')
    assert main(["sweep", str(path), "--quiet"]) == 2
    assert "is a folder; it names the results page" in capsys.readouterr().err


def _subcommands(parser, path=()):
    """(command path, its parser) for every leaf subcommand of the `longrnn` parser."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _subcommands(sub, (*path, name))


def _generated_cases():
    """A bad value for every option of every subcommand that takes a number or a choice: a negative
    number, a non-finite one, a word where a number belongs, a choice that does not exist."""
    from longrnn.cli import build_parser

    cases = []
    for path, parser in _subcommands(build_parser()):
        for action in parser._actions:
            flag = next((o for o in action.option_strings if o.startswith("--")), None)
            if flag is None or action.help == "==SUPPRESS==" or (path == ("train",) and "." in action.dest):
                continue  # train's config flags have their own table above; deprecated spellings are hidden
            if action.choices is not None:
                cases.append((path, flag, ["bogus"]))
            elif action.type is int:
                cases += [(path, flag, ["-7"]), (path, flag, ["abc"])]
            elif action.type is float:
                cases += [(path, flag, ["nan"]), (path, flag, ["-7"])]
    return cases


GENERATED = _generated_cases()


def test_the_generated_table_reaches_every_command():
    assert {path for path, _, _ in GENERATED} >= {("eval",), ("dsr", "eval"), ("bench", "speed"),
                                                  ("bench", "memory"), ("bench", "convexp")}


@pytest.mark.parametrize(("path", "flag", "value"), GENERATED,
                         ids=[f"{' '.join(p)} {f} {v[0]}" for p, f, v in GENERATED])
def test_every_flag_of_every_command_refuses_a_bad_value_in_one_line(tmp_path, capsys, path, flag, value):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'out = "{tmp_path / "runs"}"\nresults = "{tmp_path / "page.md"}"\n[base.task]\nname = "adding"\n')
    positional = {("eval",): [str(tmp_path)], ("dsr", "eval"): [str(tmp_path)], ("report",): [str(tmp_path)],
                  ("reproduce",): [str(grid)], ("sweep",): [str(grid)]}.get(path, [])
    if path[0] in ("reproduce", "sweep"):
        positional.append("--report-only")
    code = main([*path, *positional, flag, *value])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("longrnn: error: "), captured.err
    assert "Traceback" not in captured.err


def _files(tmp_path):
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "afile").write_text("x")
    grids = {
        "seeds": 'seeds = 0\n[base.task]\nname = "adding"\n',
        "labels": '[base.task]\nname = "adding"\n[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "A"\n',
        "noseeds": 'seeds = []\n[base.task]\nname = "adding"\n',
        "budget": '[base.task]\nname = "adding"\n[budget.small]\nstep = 3\n',
        "basetype": 'base = 3\n',
        "twoseeds": 'seeds = [0, 0]\n[base.task]\nname = "adding"\n',
        "budgettype": '[base.task]\nname = "adding"\n[budget.small]\nvariants = [1]\n',
    }
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.toml").write_text('[task]\nname = "lorenz63"\n[model]\ncell = "plrnn"\n[train]\n')
    (tmp_path / "emptyconfig").mkdir()
    (tmp_path / "emptyconfig" / "config.toml").write_text("")
    for name, text in grids.items():
        (tmp_path / f"{name}.toml").write_text(f'out = "{tmp_path / "runs"}"\n' + text)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["train", "--config", "{tmp}/binary.toml"], "is not valid TOML"),
        (["train", "--config", "{tmp}"], "is not a file"),
        (["train", "--steps", "1", "--name", "../escape", "--out", "{tmp}/runs"], "--name a single folder"),
        (["train", "--steps", "1", "--out", ""], "--out must name a folder"),
        (["train", "--steps", "1", "--name", " ", "--out", "{tmp}/runs"], "--name must name a single folder, got ' '"),
        (["train", "--threads", "5000"], "train.threads must be in [0, 1024], got 5000"),
        (["train", "--forget-init", "chrono:inf", "--out", "{tmp}/runs"], "chrono needs a finite T_MAX > 2"),
        (["train", "--set", "task.validation_size=-5", "--out", "{tmp}/runs"], "validation_size must be a positive"),
        (["train", "--set", 'model.fused="true"', "--out", "{tmp}/runs"],  # text, as a cell's options take it
         "model.fused must be of type bool, got 'true'"),
        (["train", "--seq-len", "1000000000", "--batch-size", "1000000", "--steps", "1", "--out", "{tmp}/runs"],
         "not enough memory"),
        (["train", "--task", "copy", "--seq-len", "10000000", "--steps", "1", "--out", "{tmp}/runs"],
         "states kept for backpropagation need at least"),  # refused before a minute of drawing its first batch
        (["report", "{repo}/results/memup-small", "--out", "{tmp}/afile", "--no-plots"],
         "--out '{tmp}/afile' is a file; give --out a folder (new or existing)"),
        (["bench", "memory", "--out", "{tmp}/afile", "--seq-len", "10", "--steps", "1", "--quiet"],
         "--out '{tmp}/afile' is a file"),  # before measuring, not after
        (["sweep", "{tmp}/binary.toml"], "is not valid TOML"),
        (["sweep", "{tmp}/seeds.toml"], "seeds must be a list of whole numbers"),
        (["sweep", "{tmp}/labels.toml"], "two variant labels name the same runs (a)"),
        (["bench", "memory", "--device", "cuda"], "device 'cuda' is not available"),
        (["train", "--task", "spatial_copy", "--set", "task.noise=nan"], "task.noise must be a finite number"),
        (["train", "--memup-predictor", "bogus", "--out", "{tmp}/runs"], "bogus"),
        (["train", "--layers", "5000"], "model.layers must be in [1, 1000], got 5000"),
        (["train", "--trainer", "memup", "--task", "copy", "--seq-len", "10", "--memup-targets", "100000",
          "--out", "{tmp}/runs"], "memup_targets (100000) must be at most the sequence length (30)"),
        (["sweep", "{tmp}/noseeds.toml"], "seeds must be a list of whole numbers"),
        (["dsr", "eval", "{tmp}/unfinished"], "has not finished (no summary.json)"),
        (["train", "--lr", "-inf", "--out", "{tmp}/runs"], "train.lr must be a finite number, got -inf"),
        (["train", "--lr", "-1e-3", "--out", "{tmp}/runs"], "train.lr must be > 0, got -0.001"),
        (["train", "--cell", "conv_unitary", "--set", "model.lattice=0x4", "--out", "{tmp}/runs"],
         "bad lattice '0x4'"),
        (["sweep", "{tmp}/budget.toml", "--report-only"], "[budget.small] has unknown keys ['step']"),
        (["bench", "convexp", "--stencil", "99", "--sizes", "4"], "stencil 99 does not fit the smallest lattice 4x4"),
        (["train", "--steps", "1", "--resume", "--out", "{tmp}/runs", "--name", "typo"],
         "nothing to resume: '{tmp}/runs/typo' holds no run"),
        (["sweep", "{tmp}/basetype.toml", "--report-only"], "base must be a table, got 3"),
        (["sweep", "{tmp}/budgettype.toml", "--report-only"], "[budget.small] variants must be an array of tables"),
        (["sweep", "{tmp}/budget.toml", "--backend", "ray", "--address", "nope"], "budget"),
        (["eval", "{tmp}/emptyconfig"], "lacks a [task], [model] or [train] table"),
        (["sweep", "{tmp}/twoseeds.toml", "--report-only"], "seeds names a seed twice, [0, 0]"),
        (["report", "{repo}/results/memup-small", "--page", "{tmp}/x.md"], "--page names the leaderboard page"),
        (["report", "--leaderboard", "--json"], "--leaderboard writes the page --page names"),
        (["sweep", "{tmp}/budget.toml", "--address", "x:1"], "--address names a Ray cluster"),
        (["bench", "memory", "--set", "train.steps=5"], "give --steps instead of --set train.steps"),
        (["bench", "convexp", "--stencil", "5", "--sizes", "4"], "an odd stencil of at most 3 units"),
        (["train", "--momentum", "0.5", "--out", "{tmp}/runs"], "train.momentum = 0.5 applies to optimizer 'sgd'"),
        (["train", "--curriculum", "3:1,", "--out", "{tmp}/runs"], "has an empty stage"),
        (["sweep", "{tmp}/budget.toml", "--workers", "2", "--jobs", "3"], "--jobs and --workers are the same"),
        (["train", "--tf-alpha", "0.5", "--out", "{tmp}/runs"], "train.tf_alpha = 0.5 applies to trainer"),
        (["train", "--lr-warmup", "0", "--out", "{tmp}/runs"], "unrecognized arguments: --lr-warmup"),
        (["train", "--set", "train.warmup_steps=1", "--set", "train.lr_warmup_steps=0", "--out", "{tmp}/runs"],
         "--set train.warmup_steps and --set train.lr_warmup_steps are the same setting"),
        (["train", "--config", "", "--out", "{tmp}/runs"], "config file '' names no file"),
        (["train", "--trainer", "teacher_forcing", "--out", "{tmp}/runs", "--name", "tf"],
         "--trainer teacher_forcing needs a next-step prediction task"),
    ],
)
def test_what_a_careful_user_tried_is_one_line(tmp_path, capsys, argv, named):
    _files(tmp_path)
    repo = str(Path(__file__).parents[1])
    code = main([a.replace("{tmp}", str(tmp_path)).replace("{repo}", repo) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named.replace("{tmp}", str(tmp_path)) in lines[0], captured.err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_weights_of_another_model_are_named_not_a_traceback(tmp_path, capsys):
    import torch

    assert main(["train", "--task", "adding", "--seq-len", "5", "--hidden-size", "4", "--steps", "2", "--eval-every",
                 "2", "--batch-size", "4", "--threads", "1", "--quiet", "--out", str(tmp_path), "--name", "r"]) == 0
    torch.save({"weight": torch.zeros(3)}, tmp_path / "r" / "model.pt")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.pt does not fit the model its run's config.toml describes" in err[0]


def test_a_run_stopped_before_its_first_evaluation_starts_again_without_resume(tmp_path, capsys):
    """A run that stopped before it saved anything (here: its config and empty log, as a crash leaves them)
    holds nothing to lose: the same command, or one with other flags and the same --name, starts it."""
    flags = ["train", "--task", "adding", "--seq-len", "5", "--hidden-size", "4", "--steps", "2", "--eval-every", "2",
             "--batch-size", "4", "--threads", "1", "--quiet", "--out", str(tmp_path), "--name", "r"]
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.toml").write_text('[task]\nname = "copy"\n')
    (tmp_path / "r" / "metrics.jsonl").write_text("")
    assert main(flags) == 0
    assert 'name = "adding"' in (tmp_path / "r" / "config.toml").read_text()
    capsys.readouterr()
    assert main(flags) == 2  # now it holds a trained run: that one is not replaced unasked
    assert "already exists; pass --resume" in capsys.readouterr().err


def test_a_damaged_failure_record_of_a_sweep_is_named(tmp_path):
    from longrnn.experiment.sweep import _run_one
    from longrnn.runs.config import RunConfig

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "failed.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="failed.json is damaged; delete it, or pass --retry-failed"):
        _run_one(RunConfig(out=str(tmp_path), name="r"))


def test_warnings_on_the_command_line_are_one_line(capsys):
    assert main(["bench", "convexp", "--sizes", "1", "--stencil", "0", "--repeats", "1", "--warmup-rounds", "0",
                 "--dense-max", "4", "--complex-state", "--quiet"]) == 0  # complex dense variants too
    assert main(["bench", "convexp", "--sizes", "1", "--stencil", "0", "--repeats", "1", "--warmup-rounds", "0",
                 "--dense-max", "4", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("longrnn: warning: ") for line in err), err


def test_a_deprecated_flag_with_a_bad_value_prints_the_error_alone_and_with_good_ones_warns_first(tmp_path, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # each call warns, as each command-line process does
        assert main(["train", "--warmup-steps", "5", "--seq-len", "-1", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["longrnn: error: task.seq_len must be in [1, 10^9], got -1"]
        assert main(["train", "--warmup-steps", "5", "--seq-lenn", "5"]) == 2  # a parse error too
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert main(["train", "--warmup-steps", "1", "--task", "adding", "--seq-len", "5", "--hidden-size", "4",
                     "--steps", "2", "--eval-every", "2", "--batch-size", "4", "--threads", "1",
                     "--out", str(tmp_path)]) == 0
        err = capsys.readouterr().err.strip().splitlines()  # the remark, then the progress lines (not a terminal)
        assert err[0].startswith("longrnn: warning: --warmup-steps is deprecated") and len(err) > 1


def test_a_sweep_never_writes_into_another_configs_runs(tmp_path, capsys):
    grid = 'out = "%s"\nresults = "%s"\n[base.task]\nname = "adding"\nseq_len = 5\n[base.model]\nhidden_size = 4\n' \
           '[base.train]\nsteps = %d\neval_every = 2\nbatch_size = 4\nthreads = 1\n[[variants]]\nlabel = "gru"\n' \
           '[variants.model]\ncell = "gru"\n'
    (tmp_path / "a.toml").write_text(grid % (tmp_path / "runs", tmp_path / "a.md", 2))
    (tmp_path / "b.toml").write_text(grid % (tmp_path / "runs", tmp_path / "b.md", 4))  # same out, other steps
    assert main(["sweep", str(tmp_path / "a.toml"), "--quiet", "--no-plots"]) == 0
    capsys.readouterr()
    for extra in ([], ["--report-only"]):
        assert main(["sweep", str(tmp_path / "b.toml"), "--quiet", "--no-plots", *extra]) == 2
        assert "holds a run of another config" in capsys.readouterr().err
    assert not list((tmp_path / "runs").rglob("failed.json"))
    assert main(["sweep", str(tmp_path / "a.toml"), "--quiet", "--no-plots"]) == 0  # its own runs: finished
