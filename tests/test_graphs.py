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


def _run(cell, x, loop):
    cell.zero_grad()
    leaf = x.clone().requires_grad_()
    out, state = loop(leaf)
    (out.abs().square().sum() + state.abs().sum()).backward()
    return [out, state, leaf.grad, *(p.grad.clone() for p in cell.parameters())]


@needs_gpu
@pytest.mark.parametrize("name, options", CELLS)
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
    assert len([k for k in graphs._GRAPHS[cell] if k != "full"]) == graphs.MAX_GRAPHS
