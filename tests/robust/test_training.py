"""Adversarial training through the Trainer: it buys robustness; the schedule; the early stop."""

import pytest
import torch
import torch.nn.functional as F

from counterfeit.gan import Callback, ConfigError, DataError, StepContext, Trainer, TrainerConfig
from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.data import InfiniteLoader
from counterfeit.robust import (
    AdversarialTraining,
    CatastrophicOverfittingStop,
    cyclic_lr,
    digits_cnn,
    evaluate,
    fgsm,
)
from tests.robust.conftest import sklearn_digits


def _fit(method, steps, callbacks=(), **config):
    train, _ = sklearn_digits()
    settings = dict(max_steps=steps, progress=False, log_every=10, seed=0, **config)
    trainer = Trainer(
        method, InfiniteLoader(train, 64, seed=0), TrainerConfig(**settings), callbacks=callbacks
    )
    return trainer, trainer.fit()


def test_fgsm_rs_and_trades_training_are_more_robust_than_standard_training():
    _, test = sklearn_digits()
    reports = {}
    for name in ("standard", "fgsm-rs", "trades"):
        torch.manual_seed(0)
        method = (
            AdversarialTraining(
                digits_cnn(1, 10, 8), method=name, eps=0.1, trades_steps=5, step_size=0.03
            )
            if name == "trades"
            else AdversarialTraining(digits_cnn(1, 10, 8), method=name, eps=0.1)
        )
        _fit(method, 200)
        reports[name] = evaluate(
            method.model.eval(), test, attacks=["pgd"], eps=[0.0, 0.1], corruptions=None
        )
    standard = reports["standard"]
    assert standard.clean_accuracy > 0.9
    for name in ("fgsm-rs", "trades"):
        assert reports[name].clean_accuracy > 0.85, name
        assert reports[name].attacks["pgd"][1] > standard.attacks["pgd"][1] + 0.15, name


def test_trades_examples_climb_the_kl_inside_the_ball():
    _, test = sklearn_digits()
    x, _ = test.get_batch(torch.arange(64))
    torch.manual_seed(0)
    method = AdversarialTraining(digits_cnn(1, 10, 8), method="trades", eps=0.1, trades_steps=10)
    _fit(method, 50)
    model = method.model.eval()
    x_adv = method.trades_examples(x)
    assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert method.step_size == pytest.approx(0.1 / 30)
    with torch.no_grad():
        clean = F.log_softmax(model(x), 1)

        def kl(points):
            return F.kl_div(
                F.log_softmax(model(points), 1), clean, log_target=True, reduction="sum"
            )

        # the same perturbation sizes per pixel with random signs
        noise = (x + (x_adv - x).abs() * torch.sign(torch.randn_like(x))).clamp(0, 1)
        assert kl(x_adv) > 2 * kl(noise)


def test_fgsm_rs_examples_start_at_random_inside_the_ball():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(64))
    torch.manual_seed(0)
    method = AdversarialTraining(digits_cnn(1, 10, 8), method="fgsm-rs", eps=0.1)
    x_adv = method.adversarial_examples(x, y)
    delta = x_adv - x
    assert float(delta.abs().max()) <= 0.1 + 1e-6
    # alpha = 1.25 eps from a random start: most unclipped pixels end on the ball's surface,
    # some inside it (a plain FGSM step puts every unclipped pixel on the surface)
    inside = (x > 0.1) & (x < 0.9)
    on_surface = (delta[inside].abs() > 0.1 - 1e-6).float().mean()
    assert 0.5 < float(on_surface) < 1.0
    assert method.step_size == pytest.approx(0.125)


def test_goodfellow_objective_mixes_clean_and_adversarial_loss():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(64))
    torch.manual_seed(0)
    method = AdversarialTraining(digits_cnn(1, 10, 8), method="fgsm", eps=0.1, fgsm_weight=0.3)
    model = method.model
    with torch.no_grad():
        clean = F.cross_entropy(model(x), y)
        adversarial = F.cross_entropy(model(fgsm(model, x, y, 0.1, train_mode=True)), y)
    ctx = StepContext.single_process(method.configure_optimizers(), total_steps=1)
    metrics = method.train_step((x, y), ctx)
    assert float(metrics["loss"]) == pytest.approx(float(0.3 * clean + 0.7 * adversarial), rel=1e-5)


def test_cyclic_learning_rate_rises_to_the_peak_and_falls_to_zero():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    schedule = cyclic_lr(optimizer, total_steps=10, peak=0.4)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [0.5, 1.0, 1.5, 2.0, 5 / 3, 4 / 3, 1.0, 2 / 3, 1 / 3, 0.0]
    assert lrs == pytest.approx(expected)


class Sabotage(Callback):
    """From step ``start`` on, zero the classifier's last layer: robustness collapses."""

    every = 1

    def __init__(self, start):
        self.start = start

    def on_step(self, trainer, step):
        if step >= self.start:
            with torch.no_grad():
                last = trainer.method.model[-1]
                last.weight.zero_()
                last.bias.zero_()


def test_catastrophic_overfitting_restores_the_last_good_weights_and_stops(tmp_path):
    train, _ = sklearn_digits()
    x, y = train.get_batch(torch.arange(200))
    torch.manual_seed(0)
    method = AdversarialTraining(digits_cnn(1, 10, 8), method="standard", lr_schedule="constant")
    stop = CatastrophicOverfittingStop(x, y, eps=0.01, every=10)
    trainer = Trainer(
        method,
        InfiniteLoader(train, 64, seed=0),
        TrainerConfig(max_steps=100, progress=False, log_every=10, seed=0),
        callbacks=[Sabotage(start=21), stop],  # sabotage runs first, from step 21
        checkpoint_path=tmp_path / "run.ckpt",
    )
    result = trainer.fit()
    assert result.steps == 30
    assert result.stopped_early.startswith("catastrophic overfitting at step 30")
    assert "weights restored to step 20" in result.stopped_early
    accuracies = dict((step, v["heldout/pgd_accuracy"]) for step, v in result.evaluations)
    assert accuracies[20] > accuracies[30] + 0.2
    assert stop.robust_accuracy(method) == pytest.approx(accuracies[20])  # step-20 weights
    assert load_checkpoint(tmp_path / "run.ckpt")["stop_reason"] == result.stopped_early


class StopAt(Callback):
    def __init__(self, step):
        self.every = step

    def on_step(self, trainer, step):
        trainer.request_stop("enough")


def test_trainer_request_stop_ends_training_and_survives_resume(tmp_path):
    torch.manual_seed(0)
    method = AdversarialTraining(digits_cnn(1, 10, 8), method="standard")
    train, _ = sklearn_digits()
    config = TrainerConfig(max_steps=50, progress=False, log_every=4, checkpoint_every=20, seed=0)
    trainer = Trainer(
        method,
        InfiniteLoader(train, 32),
        config,
        callbacks=[StopAt(6)],
        checkpoint_path=tmp_path / "a.ckpt",
    )
    result = trainer.fit()
    assert (result.steps, result.stopped_early) == (6, "enough")
    assert result.last_metrics["loss"] > 0  # the partial logging window was flushed
    weights = {k: v.clone() for k, v in method.state_dict().items()}
    again = Trainer(method, InfiniteLoader(train, 32), config, checkpoint_path=tmp_path / "a.ckpt")
    resumed = again.fit(resume=True)
    assert (resumed.steps, resumed.stopped_early) == (6, "enough")
    assert all(torch.equal(v, weights[k]) for k, v in method.state_dict().items())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="pgd"), "unknown method 'pgd'"),
        (dict(eps=1.5), "eps must be in [0, 1]"),
        (dict(lr_peak=1.0), "lr_peak must be in (0, 1)"),
        (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (dict(lr_schedule="cosine"), "unknown lr_schedule 'cosine'"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as info:
        AdversarialTraining(digits_cnn(1, 10, 8), **kwargs)
    assert message in str(info.value)


def test_unlabeled_batches_and_bad_checks_are_refused():
    method = AdversarialTraining(digits_cnn(1, 10, 8))
    ctx = StepContext.single_process(method.configure_optimizers(), total_steps=1)
    with pytest.raises(DataError, match="needs labelled images"):
        method.train_step((torch.rand(4, 1, 8, 8), torch.full((4,), -1)), ctx)
    with pytest.raises(ConfigError, match="every must be >= 1"):
        CatastrophicOverfittingStop(torch.rand(2, 1, 8, 8), torch.zeros(2), 0.1, every=0)
