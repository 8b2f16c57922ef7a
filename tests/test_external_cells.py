"""torchrecurrent's cells under longrnn's Cell protocol (``--cell torchrecurrent:NAME``): its BRC, nBRC and
MGU equal ours on identical weights; single-, double-state and decoupled cells run in every trainer and in
warm-up; bad names, options and sizes are one-line errors; a missing extra names it."""

import pytest
import torch

from longrnn.cells import cell_options, external, make_cell
from longrnn.errors import UsageError
from longrnn.models import SequenceModel
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train

pytest.importorskip("torchrecurrent")


def _copy_bistable(ours, theirs, hidden):
    """Our (c, a, h) blocks from torchrecurrent's (a, c, h) blocks; its two biases summed into ours."""
    w, b_ih, b_hh = theirs.weight_ih, theirs.bias_ih, theirs.bias_hh
    a, c, h = w.split(hidden)
    ours.weight_ih.copy_(torch.cat([c, a, h]))
    ours.bias.copy_(torch.cat([b_ih[hidden:2 * hidden] + b_hh[hidden:], b_ih[:hidden] + b_hh[:hidden],
                               b_ih[2 * hidden:]]))
    if hasattr(ours, "memory_c"):
        ours.memory_a.copy_(theirs.weight_hh[:hidden])
        ours.memory_c.copy_(theirs.weight_hh[hidden:])
    else:
        ours.weight_hh.copy_(torch.cat([theirs.weight_hh[hidden:], theirs.weight_hh[:hidden]]))


def _copy_mgu(ours, theirs, hidden):
    """Same block order (f, h); torchrecurrent's two biases summed into ours."""
    ours.weight_ih.copy_(theirs.weight_ih)
    ours.weight_hh.copy_(theirs.weight_hh)
    ours.bias.copy_(theirs.bias_ih + theirs.bias_hh)


@pytest.mark.parametrize(("ours", "theirs", "copy"), [("brc", "br", _copy_bistable),
                                                      ("nbrc", "nbr", _copy_bistable),
                                                      ("mgu", "mgu", _copy_mgu)])
def test_torchrecurrents_bistable_cells_and_mgu_equal_ours_on_identical_weights(ours, theirs, copy):
    torch.manual_seed(0)
    hidden = 5
    external_cell = make_cell(f"torchrecurrent:{theirs}", 3, hidden).double()
    with torch.no_grad():  # random biases and memory vectors: the block order matters everywhere
        for p in external_cell.parameters():
            p.normal_(0, 0.7)
    native = make_cell(ours, 3, hidden).double()
    with torch.no_grad():
        copy(native, external_cell.inner, hidden)
    x = torch.randn(4, 30, 3, dtype=torch.float64, requires_grad=True)
    outputs = []
    for cell in (native, external_cell):
        state, hs = cell.init_state(4), []
        for x_t in x.unbind(1):
            h, state = cell(x_t, state)
            hs.append(h)
        outputs.append(torch.stack(hs, 1))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-12)
    native_grad, external_grad = (torch.autograd.grad(out.sin().sum(), x)[0] for out in outputs)
    torch.testing.assert_close(native_grad, external_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["cornn", "lem", "mclstm", "tgru", "indrnn"])
def test_single_double_and_decoupled_cells_run_variable_lengths_and_backpropagate(name):
    torch.manual_seed(0)
    model = SequenceModel(f"torchrecurrent:{name}", 3, 6, 2, num_layers=2)
    x = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 4, 7, 1])
    y, _ = model(x, lengths=lengths)
    assert y.shape == (4, 2) and torch.isfinite(y).all()
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_bad_names_options_and_sizes_are_usage_errors():
    with pytest.raises(UsageError, match=r"unknown cell 'torchrecurrent:corn'; allowed: .*torchrecurrent:cornn"):
        make_cell("torchrecurrent:corn", 3, 4)
    with pytest.raises(UsageError, match=r"has no option 'dtt'; allowed: .*\bdt\b"):
        make_cell("torchrecurrent:cornn", 3, 4, dtt=0.1)
    with pytest.raises(UsageError, match="input_size == hidden_size"):
        make_cell("torchrecurrent:intersectionrnn", 3, 4)
    assert "dt" in cell_options("torchrecurrent:lem") and "device" not in cell_options("torchrecurrent:lem")
    for option, kind in ((dict(dt="abc"), "a number"), (dict(bias="no"), "true or false"),
                         (dict(kernel_init=1), "an initialiser's name")):
        with pytest.raises(UsageError, match=f"option {next(iter(option))} must be {kind}"):
            make_cell("torchrecurrent:lem", 3, 4, **option)  # the package would ignore or misread them
    with pytest.raises(UsageError, match=r"a double layer needs every state tensor .* hidden_size wide"):
        SequenceModel("torchrecurrent:tgru", 3, 8, 1, double=True)  # its second state is input_size wide
    with pytest.raises(UsageError, match=r"unknown cell 'lstn'; allowed: .*torchrecurrent:NAME"):
        make_cell("lstn", 3, 4)


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torchrecurrent", None)
    external._package_cells.cache_clear()
    external.cell_class.cache_clear()
    try:
        with pytest.raises(UsageError, match=r"pip install 'longrnn\[torchrecurrent\]'"):
            make_cell("torchrecurrent:cornn", 3, 4)
        assert external.available() == {}
    finally:
        external._package_cells.cache_clear()
        external.cell_class.cache_clear()


def _config(tmp_path, *overrides):
    base = ["task.name=adding", "task.seq_len=10", "model.cell=torchrecurrent:lem", "model.hidden_size=8",
            "train.steps=6", "train.eval_every=3", "train.batch_size=8", "train.threads=1",
            "task.options.validation_size=32", "task.options.test_size=32", f"out={tmp_path}"]
    return apply_overrides(RunConfig(), base + list(overrides))


@pytest.mark.parametrize("extra", [[], ["train.trainer=tbptt", "train.tbptt_len=4"],
                                   ["train.trainer=memup", "task.name=copy", "task.seq_len=12"],
                                   ["train.warmup=true", "train.warmup_num_steps=2", "train.vaa_steps=50"]],
                         ids=["bptt", "tbptt", "memup", "warm-up"])
def test_every_trainer_and_warm_up_take_an_external_cell(tmp_path, extra):
    summary = train(_config(tmp_path, *extra), quiet=True)
    assert summary["status"] in ("finished", "solved"), summary
    assert summary["run_dir"].rsplit("/", 1)[-1].startswith(("adding-T10-torchrecurrent-lem", "copy-T12-"))


def test_a_sweep_checks_an_external_cell_on_the_meta_device():
    from longrnn.training.trainer import check_run

    for cell in ("cornn", "janet"):  # janet makes a tensor on the default device in its step
        config = ["task.name=adding", "task.seq_len=20", f"model.cell=torchrecurrent:{cell}"]
        check_run(apply_overrides(RunConfig(), config))
