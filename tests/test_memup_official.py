"""MemUP as the official code runs it: global and sampled target selection (training/memup_targets.py), the
memory-loss weight, the alternating schedule (training/memup_schedule.py) and evaluation with the EMA copy."""

from __future__ import annotations

import pytest
import torch

from longrnn.errors import UsageError
from longrnn.tasks import make_task
from longrnn.training import train, trainer
from longrnn.training.memup import MemUP
from longrnn.training.memup_schedule import AlternatingMemUP, build_memup
from longrnn.training.memup_targets import TargetSelector, select_targets
from test_memup import crash_and_resume_match, memup_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _selector(k, selection="future", temperature=0.0, resample_every=20, seed=0):
    return TargetSelector(k, selection, temperature, resample_every, torch.Generator().manual_seed(seed))


def _frequencies(idx: torch.Tensor, time: int) -> torch.Tensor:
    return torch.bincount(idx.flatten(), minlength=time).double() / idx.numel()


def test_global_top_k_is_the_whole_sequences_top_k_for_every_prediction_step():
    torch.manual_seed(0)
    u = torch.randn(3, 12)
    scored = torch.rand(3, 12) > 0.3
    selector = _selector(4, "global")
    selector.start(u, scored)
    idx, valid = selector.select(torch.tensor([0, 5, 11]))
    assert valid.all()
    for b in range(3):
        best = u[b].masked_fill(~scored[b], float("-inf")).topk(4).indices
        for p in range(3):  # the same K steps at every t, steps before t included
            assert idx[b, p].tolist() == best.tolist()


def test_future_top_k_with_temperature_zero_draws_as_before():
    torch.manual_seed(0)
    u, scored, steps = torch.randn(2, 15), torch.ones(2, 15, dtype=torch.bool), torch.tensor([3, 13])
    selector = _selector(5, seed=4)
    selector.start(u, scored)
    expected = select_targets(u, scored, steps, 5, torch.Generator().manual_seed(4))
    for got, want in zip(selector.select(steps), expected):
        assert torch.equal(got, want)


def test_sampled_future_targets_follow_the_softmax_of_u_over_temperature():
    """Gumbel top-1 over k >= t samples P(k) ∝ exp(u_k / τ) on the remaining steps (many rows at once)."""
    rows, tau = 40_000, 0.5
    u = torch.tensor([3.0, 0.1, 0.2, 0.5, 0.0, -0.4]).expand(rows, -1)
    selector = _selector(1, temperature=tau, seed=1)
    selector.start(u, torch.ones_like(u, dtype=torch.bool))
    idx, _ = selector.select(torch.tensor([2]))
    expected = torch.zeros(6, dtype=torch.float64)
    expected[2:] = torch.softmax(u[0, 2:].double() / tau, 0)
    torch.testing.assert_close(_frequencies(idx, 6), expected, atol=0.01, rtol=0)


def test_a_small_temperature_samples_the_top_k_and_without_replacement():
    torch.manual_seed(0)
    u = torch.randn(4, 20) * 10
    scored = torch.ones_like(u, dtype=torch.bool)
    selector = _selector(6, temperature=1e-4)
    selector.start(u, scored)
    idx, _ = selector.select(torch.tensor([0, 7]))
    deterministic, _ = select_targets(u, scored, torch.tensor([0, 7]), 6)
    assert torch.equal(idx.sort(-1).values, deterministic.sort(-1).values)
    selector = _selector(6, temperature=5.0)
    selector.start(u, scored)
    idx, _ = selector.select(torch.tensor([0]))
    assert all(len(set(row.tolist())) == 6 for row in idx[:, 0])  # 6 distinct steps: without replacement


def test_gumbel_noise_is_redrawn_every_resample_every_prediction_steps():
    u = torch.zeros(200, 30)  # equal u: which step wins is the noise alone
    selector = _selector(1, temperature=1.0, resample_every=3)
    selector.start(u, torch.ones_like(u, dtype=torch.bool))
    first, _ = selector.select(torch.tensor([0, 0]))
    second, _ = selector.select(torch.tensor([0, 0, 0]))  # ordinals 2 | 3, 4: one old block, one new
    picks = torch.cat([first, second], 1)[..., 0]
    assert torch.equal(picks[:, 0], picks[:, 1]) and torch.equal(picks[:, 1], picks[:, 2])
    assert torch.equal(picks[:, 3], picks[:, 4])
    assert (picks[:, 2] != picks[:, 3]).float().mean() > 0.8


def test_sampled_global_targets_follow_the_softmax_over_scored_steps_once_per_sequence():
    rows, tau = 20_000, 1.0
    u = torch.tensor([1.0, 2.0, 0.0, 5.0, 0.5]).expand(rows, -1)
    scored = torch.tensor([True, True, True, False, True]).expand(rows, -1)
    selector = _selector(3, "global", temperature=tau, seed=2)
    selector.start(u, scored)
    idx, valid = selector.select(torch.tensor([0, 4]))
    assert valid.all() and torch.equal(idx[:, 0], idx[:, 1])  # drawn once, the same for every t
    expected = torch.softmax(u[0].masked_fill(~scored[0], float("-inf")).double() / tau, 0)
    torch.testing.assert_close(_frequencies(idx[:, 0], 5), expected, atol=0.01, rtol=0)


def _memup(task, model, **options):
    return MemUP(model, task, batch_size=4, rollout=5, targets=3, predict_every=5, seed=0, **options)


def test_the_loss_weight_multiplies_the_memory_loss():
    task = make_task("copy", seq_len=10, validation_size=8, test_size=8)
    losses = []
    for weight in (1.0, 0.1):
        torch.manual_seed(0)
        model = tiny_model(task)
        losses.append(_memup(task, model, loss_weight=weight).loss(torch.Generator().manual_seed(3)))
    torch.testing.assert_close(losses[1], 0.1 * losses[0])


def _alternating(pretrain_steps=3, phase_steps=2, **train):
    config = memup_config(memup_schedule="alternating", memup_pretrain_steps=pretrain_steps,
                          memup_phase_steps=phase_steps, batch_size=4, memup_rollout=5, memup_targets=3, **train)
    task = make_task("copy", seq_len=10, validation_size=8, test_size=8)
    torch.manual_seed(0)
    model = tiny_model(task)
    return build_memup(model, task, config.train), model


def test_the_alternating_schedule_pretrains_the_predictor_then_alternates():
    memup, _ = _alternating(pretrain_steps=3, phase_steps=2)
    assert isinstance(memup, AlternatingMemUP)
    phases = [memup.phase(step) for step in range(11)]
    assert phases == ["predictor"] * 3 + ["memory"] * 2 + ["predictor"] * 2 + ["memory"] * 2 + ["predictor"] * 2


def test_each_phase_updates_only_its_own_part():
    memup, model = _alternating(pretrain_steps=2, phase_steps=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        phase = memup.phase()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        loss = memup.loss(generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        memup.drop_frozen_grads()
        optimizer.step()
        memup.advance()
        changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
        assert changed == {phase}, (phase, changed)
    memory, predictor = memup.memory_phase, memup.predictor_phase  # each walks its own sequences
    assert memory.batches == predictor.batches == 1 and memory.batch.x is not predictor.batch.x
    assert (memory.offset, predictor.offset) == (2 * 5, 4 * 5)  # 2 memory steps, 4 predictor steps


def test_the_predictor_phase_predicts_the_current_step_at_every_step():
    memup, _ = _alternating(pretrain_steps=1)
    calls = []
    select = TargetSelector.select

    def spy(self, steps):
        idx, valid = select(self, steps)
        calls.append((steps.tolist(), idx.shape[-1]))
        return idx, valid

    TargetSelector.select = spy
    try:
        memup.loss(torch.Generator().manual_seed(0))
    finally:
        TargetSelector.select = select
    assert calls == [([0, 1, 2, 3, 4], 0)]  # f = 1, no top-K targets: the current step alone


def test_alternating_schedule_with_sampling_and_ema_evaluation_resumes_like_an_uninterrupted_run(tmp_path,
                                                                                               monkeypatch):
    crash_and_resume_match(tmp_path, monkeypatch, AlternatingMemUP, memup_schedule="alternating",
                           memup_pretrain_steps=3, memup_phase_steps=2, memup_temperature=0.25, memup_eval_ema=True,
                           memup_loss_weight=0.1, memup_ema_every=4, memup_ema_decay=0.97)


def test_eval_ema_scores_the_ema_copy(tmp_path, monkeypatch):
    seen = []
    evaluate = trainer.evaluate

    def recording(model, *args, **kwargs):
        seen.append(model)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", recording)
    config = memup_config(steps=4, eval_every=2, batch_size=4, memup_rollout=5, memup_eval_ema=True)
    config.out = str(tmp_path)
    train(config, quiet=True)
    validation = seen[:2]  # two evaluations; the last call scores the best weights on the test set
    assert all(not any(p.requires_grad for p in model.parameters()) for model in validation)  # the EMA copy


@pytest.mark.parametrize(("train_options", "message"), [
    ({"memup_schedule": "weekly"}, "unknown memup_schedule 'weekly'; allowed: alternating, joint"),
    ({"memup_phase_steps": 5}, "memup_phase_steps = 5 applies to memup_schedule 'alternating'"),
    ({"memup_selection": "past"}, "unknown memup_selection 'past'; allowed: future, global"),
    ({"memup_resample_every": 5}, "memup_resample_every = 5 applies to sampled future targets"),
    ({"memup_eval_ema": True, "memup_detector": "local"}, "needs memup_detector 'ema'"),
    ({"memup_temperature": -1.0}, "memup_temperature must be >= 0"),
    ({"memup_loss_weight": 0.0}, "memup_loss_weight must be > 0"),
    ({"memup_temperature": 1e-40}, "memup_temperature must be 0 (the top-K, what a vanishing temperature tends to) "
                                   "or at least 1e-06"),
    ({"trainer": "bptt", "memup_selection": "global"}, "memup_selection = 'global' applies to trainer 'memup'"),
    ({"memup_schedule": "alternating", "memup_pretrain_steps": 10, "steps": 10}, "must be below train.steps"),
])
def test_bad_official_settings_are_usage_errors(tmp_path, train_options, message):
    config = memup_config(**train_options)
    config.out = str(tmp_path)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(config, quiet=True)
    assert not any(tmp_path.iterdir())


def test_for_layer_takes_the_official_selectors():
    import longrnn

    torch.manual_seed(0)
    memup = MemUP.for_layer(longrnn.nn.LSTM(3, 8, batch_first=True), 4, rollout=6, targets=3,
                            selection="global", temperature=0.5)
    loss = memup.fit(torch.randn(2, 12, 3), torch.randint(0, 4, (2, 12)), torch.optim.Adam(memup.parameters()))
    assert loss == loss and memup.selector.fixed is not None  # finite; targets drawn once for the batch
    with pytest.raises(UsageError, match="temperature must be 0 or at least 1e-06, got -1"):
        MemUP.for_layer(longrnn.nn.LSTM(3, 8), 4, temperature=-1)
    layer = longrnn.nn.GRU(3, 6, batch_first=True).double()  # the predictor follows the memory's precision
    for detector in ("ema", "local"):
        memup = MemUP.for_layer(layer, 4, rollout=6, targets=3, detector=detector)
        x, y = torch.randn(2, 12, 3, dtype=torch.float64), torch.randint(0, 4, (2, 12))
        loss = memup.fit(x, y, torch.optim.Adam(memup.parameters()))
        assert loss == loss and memup.predict(x).dtype == torch.float64


def test_sequences_seen_count_both_phases_of_the_alternating_schedule():
    from longrnn.training.curriculum import batch_counter
    from longrnn.training.memup_schedule import steps_by_phase

    assert [steps_by_phase(n, 3, 2) for n in (0, 3, 4, 5, 7, 9, 10)] == [
        (0, 0), (0, 3), (1, 3), (2, 3), (2, 5), (4, 5), (4, 6)]
    memup, _ = _alternating(pretrain_steps=3, phase_steps=2)  # copy T=10: 30 steps, rollouts of 5
    assert [memup.phase(n) for n in range(9)] == ["predictor"] * 3 + ["memory"] * 2 + ["predictor"] * 2 + ["memory"] * 2
    config = memup_config(memup_schedule="alternating", memup_pretrain_steps=3, memup_phase_steps=2,
                          memup_rollout=5, steps=20)
    assert batch_counter(config)(9) == 1 + 1  # 4 memory and 5 predictor rollouts: one batch of 6 rollouts each
