"""engine="graph" (longrnn.cells.graphs): the step loop of the orthogonal and convolutional cells replayed
from CUDA graphs equals the step loop in outputs and gradients, sees an optimizer's updates, and runs in
evaluation; off a GPU it is a one-line error. The GPU tests skip without one (scripts/gpu_check.py runs
them where one is lent)."""

from __future__ import annotations

import copy
import gc

import pytest
import torch

from longrnn.cells import graphs, make_cell
from longrnn.errors import UsageError
from longrnn.models import Recurrent

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
CELLS = [("orthogonal", {}), ("conv_unitary", {"lattice": "4x4"}), ("conv_unitary", {"lattice": "4x4",
                                                                                     "complex_state": True})]


@pytest.mark.parametrize("name, options", CELLS)
def test_engine_graph_off_a_gpu_is_a_one_line_error(name, options):
    cell = make_cell(name, 3, 16, engine="graph", **options)
    with pytest.raises(UsageError, match="engine 'graph' records CUDA graphs and runs on a CUDA device, not on 'cpu'"):
        cell.fused_forward(torch.randn(2, 5, 3), cell.init_state(2))


def test_an_unknown_engine_names_the_allowed_ones():
    with pytest.raises(UsageError, match="unknown engine 'triton'; allowed: auto, graph"):
        make_cell("orthogonal", 3, 4, engine="triton")


def test_a_copied_cell_carries_no_recordings_and_a_freed_cell_drops_them():
    cell = make_cell("orthogonal", 3, 4, engine="graph")
    graphs._GRAPHS[cell] = {"key": object()}
    assert copy.deepcopy(cell) not in graphs._GRAPHS
    del cell
    gc.collect()
    assert len(graphs._GRAPHS) == 0


@pytest.mark.parametrize("name, options", CELLS)
def test_the_recorded_loop_with_its_parametrized_weights_as_inputs_equals_the_step_loop(name, options):
    # what a recording runs, here without CUDA: the weights computed outside (under autograd) and read inside
    # through the parametrize cache; outputs and every gradient (the originals' through the inputs) equal
    torch.manual_seed(1)
    cell = make_cell(name, 3, 16, **options).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    slots = graphs.parametrized(cell)
    assert slots  # both cells have a parametrized recurrent weight
    loop = graphs._StepLoop(cell, False, 1)
    assert {id(p) for p in loop.parameters()} == {id(p) for n, p in cell.named_parameters()
                                                  if "parametrizations" not in n}

    def through_loop(leaf):
        values = [getattr(m, n) for m, n in slots]
        return loop(leaf, cell.init_state(2, dtype=torch.float64), *values)

    def through_steps(leaf):
        return Recurrent(cell, fused=False)(leaf)

    results = []
    for run in (through_loop, through_steps):
        cell.zero_grad()
        leaf = x.clone().requires_grad_()
        out, state = run(leaf)
        (out.abs().square().sum() + state.abs().sum()).backward()
        results.append([out, state, leaf.grad, *(p.grad.clone() for p in cell.parameters())])
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_injected_values_are_read_inside_and_the_parametrization_runs_again_outside():
    cell = make_cell("orthogonal", 3, 4)
    (module, name), = graphs.parametrized(cell)
    marker = torch.full((4, 4), 7.0)
    with graphs._injected([(module, name)], [marker]):
        assert getattr(module, name) is marker
    assert not torch.equal(getattr(module, name), marker)


def test_checkpoint_is_seen_so_that_its_recomputation_runs_what_its_forward_ran():
    from torch.utils.checkpoint import checkpoint

    seen = []
    x = torch.randn(3, requires_grad=True)
    checkpoint(lambda t: seen.append(graphs._saved_tensor_hooks_active()) or t.sin(), x, use_reentrant=False).sum(
    ).backward()
    assert seen == [True, True] and not graphs._saved_tensor_hooks_active()


def _run(cell, x, loop):
    cell.zero_grad()
    leaf = x.clone().requires_grad_()
    out, state = loop(leaf)
    (out.abs().square().sum() + state.abs().sum()).backward()
    return [out, state, leaf.grad, *(p.grad.clone() for p in cell.parameters())]


GPU_CELLS = [*CELLS, ("orthogonal", {"orthogonal_map": "cayley"}), ("orthogonal", {"orthogonal_map": "householder"}),
             ("conv_unitary", {"lattice": "4x2", "channels": 2})]  # two channels: the batched matrix_exp


@needs_gpu
@pytest.mark.parametrize("name, options", GPU_CELLS)
def test_graph_replays_equal_the_step_loop_and_follow_the_optimizer(name, options):
    torch.manual_seed(0)
    cell = make_cell(name, 3, 16, engine="graph", **options).cuda()
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
    for round in range(3):  # the recording is made in round 0 and replayed after each update
        x = torch.randn(4, 12, 3, device="cuda")
        graphed = _run(cell, x, Recurrent(cell, fused=True))
        stepped = _run(cell, x, Recurrent(cell, fused=False))
        for a, b in zip(graphed, stepped):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), round
        optimizer.step()
    with torch.no_grad():  # evaluation: a forward-only recording
        x = torch.randn(4, 12, 3, device="cuda")
        for a, b in zip(Recurrent(cell, fused=True)(x), Recurrent(cell, fused=False)(x)):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@needs_gpu
def test_outputs_survive_the_next_replay_and_new_shapes_beyond_the_cap_run_the_step_loop():
    torch.manual_seed(0)
    cell = make_cell("orthogonal", 3, 8, engine="graph").cuda()
    with torch.no_grad():
        first, _ = Recurrent(cell)(torch.ones(2, 5, 3, device="cuda"))
        kept = first.clone()
        Recurrent(cell)(torch.zeros(2, 5, 3, device="cuda"))
        assert torch.equal(first, kept)  # copied out of the recording's buffers
        for batch in range(3, 3 + graphs.MAX_GRAPHS):
            Recurrent(cell)(torch.ones(batch, 5, 3, device="cuda"))
    assert len(graphs._GRAPHS[cell]) == graphs.MAX_GRAPHS


def _gradients(cell, chunks, fused: bool, zero_to_none: bool = True, checkpointed: bool = False):
    """The cell's parameter gradients after one backward per chunk, accumulated (the second chunk's
    forward runs before the first chunk's backward when ``checkpointed`` is False and two forwards are
    asked for by passing a pair)."""
    from torch.utils.checkpoint import checkpoint

    cell.zero_grad(set_to_none=zero_to_none)
    loop = Recurrent(cell, fused=fused)
    losses = [(checkpoint(loop, x, use_reentrant=False) if checkpointed else loop(x))[0].abs().sum() for x in chunks]
    for loss in losses:
        loss.backward()
    return [p.grad.clone() for p in cell.parameters()]


@needs_gpu
@pytest.mark.parametrize("case", ["two forwards, then their backwards", "accumulate into zeros",
                                  "checkpointed chunks"])
def test_what_a_replay_would_overwrite_runs_the_step_loop_instead(case):
    torch.manual_seed(0)
    cell = make_cell("orthogonal", 3, 8, engine="graph").cuda()
    chunks = [torch.randn(2, 5, 3, device="cuda") for _ in range(2)]
    options = {"zero_to_none": case != "accumulate into zeros", "checkpointed": case == "checkpointed chunks"}
    for a, b in zip(_gradients(cell, chunks, True, **options), _gradients(cell, chunks, False, **options)):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), case
