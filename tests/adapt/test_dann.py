"""DANN (Ganin et al. 2016): one step against a hand-written reference, modes, errors."""

import copy

import pytest
import torch
import torch.nn.functional as F

from counterfeit.adapt import DANN, dann_lambda
from counterfeit.gan import StepContext
from counterfeit.gan.errors import ConfigError, DataError


def _batch(n=6, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(n, 3, size, size, generator=g)
    ys = torch.randint(0, 10, (n,), generator=g)
    xt = torch.rand(n, 3, size, size, generator=g)
    return (xs, ys), (xt, torch.full((n,), -1))


def test_architecture_is_the_papers_mnist_network():
    model = DANN((3, 28, 28))
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (48, (5, 5))]
    assert model.n_features == 48 * 4 * 4
    linear = [m.out_features for m in model.label_predictor if isinstance(m, torch.nn.Linear)]
    assert linear == [100, 100, 10]
    domain = [m.out_features for m in model.domain_classifier if isinstance(m, torch.nn.Linear)]
    assert domain == [100, 1]
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_one_step_matches_hand_written_reference(weight):
    """Same loss and same parameter update as a step written out by hand:
    feature grads = dL_y - lambda * w * dL_d, domain grads = w * dL_d, label grads = dL_y,
    with w = 1 (Eq. 18's sum of the two domain means) or 0.5 (one mean over both)."""
    torch.manual_seed(0)
    model = DANN((3, 28, 28), lr=0.05, momentum=0.9, domain_weight=weight)
    reference = copy.deepcopy(model)
    (xs, ys), (xt, yt) = _batch()
    step, total = 3, 10
    lam = dann_lambda(step / total)

    # --- the method's step
    optimizers = model.configure_optimizers()
    ctx = StepContext.single_process(optimizers, total)
    ctx.step = step
    metrics = model.train_step(((xs, ys), (xt, yt)), ctx)

    # --- by hand: no reversal layer; combine gradients explicitly
    f = reference.features(torch.cat([xs, xt]))
    class_loss = F.cross_entropy(reference.label_predictor(f[:6]), ys)
    d = reference.domain_classifier(f).squeeze(1)
    domain_loss = F.binary_cross_entropy_with_logits(
        d[:6], torch.zeros(6)
    ) + F.binary_cross_entropy_with_logits(d[6:], torch.ones(6))
    feat_params = list(reference.features.parameters())
    label_params = list(reference.label_predictor.parameters())
    dom_params = list(reference.domain_classifier.parameters())
    g_y = torch.autograd.grad(class_loss, feat_params + label_params, retain_graph=True)
    g_d = torch.autograd.grad(domain_loss, feat_params + dom_params)
    n_feat = len(feat_params)
    grads = [gy - lam * weight * gd for gy, gd in zip(g_y[:n_feat], g_d[:n_feat])]
    grads += list(g_y[n_feat:]) + [weight * gd for gd in g_d[n_feat:]]
    with torch.no_grad():  # first SGD-momentum step: buffer = grad, p -= lr * grad
        for p, g in zip(feat_params + label_params + dom_params, grads):
            p -= 0.05 * g

    assert metrics["loss/class"].item() == pytest.approx(class_loss.item(), rel=1e-6)
    assert metrics["loss/domain"].item() == pytest.approx(domain_loss.item(), rel=1e-6)
    assert metrics["lambda"] == pytest.approx(lam)
    got = dict(model.named_parameters())
    for name, expected in reference.named_parameters():
        assert torch.allclose(got[name], expected, atol=1e-6), name


def test_weight_average_is_what_eval_mode_classifies_and_training_never_reads():
    """ema_decay keeps avg <- d_t * avg + (1 - d_t) * w after each step (d_t warming up as
    min(d, (1 + t) / (10 + t))); eval mode, classifier() and evaluated_nets() use it, while
    the live weights train exactly as without it."""
    torch.manual_seed(0)
    model = DANN((3, 28, 28), lr=0.05, ema_decay=0.9)
    torch.manual_seed(0)
    plain = DANN((3, 28, 28), lr=0.05)

    def live_classifier_weights() -> list[torch.Tensor]:
        return [p.detach().clone() for p in model.last_iterate().parameters()]

    expected = live_classifier_weights()
    contexts = [StepContext.single_process(m.configure_optimizers(), 10) for m in (model, plain)]
    for t in range(3):
        for m, ctx in zip((model, plain), contexts):
            ctx.step = t
            m.train_step(_batch(seed=t), ctx)
        decay = min(0.9, (1 + t) / (10 + t))
        expected = [
            decay * a + (1 - decay) * w for a, w in zip(expected, live_classifier_weights())
        ]
    trained = {k: v for k, v in model.named_parameters() if not k.startswith("average.")}
    assert trained.keys() == dict(plain.named_parameters()).keys()
    for name, theirs in plain.named_parameters():
        assert torch.equal(trained[name], theirs), name  # training is unchanged by the average
    for got, want in zip(model.classifier().parameters(), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    x = torch.rand(4, 3, 28, 28)
    model.eval()
    averaged = model(x)
    features, head = model.evaluated_nets()
    assert torch.allclose(averaged, head(features(x)))
    assert not torch.allclose(averaged, model.label_predictor(model.features(x)), atol=1e-3)
    model.train()
    assert torch.allclose(model(x), model.label_predictor(model.features(x)))
    assert not any(p.requires_grad for p in model.average.parameters())


def test_reversal_pushes_features_against_the_domain_classifier():
    """A step with lambda > 0 raises the domain loss for a frozen domain classifier
    (the feature extractor moves to confuse it); with lambda = 0 it does not try."""
    torch.manual_seed(1)
    (xs, ys), (xt, _) = _batch(32)

    def domain_loss(m):
        with torch.no_grad():
            d = m.domain_classifier(m.features(torch.cat([xs, xt]))).squeeze(1)
            return (
                F.binary_cross_entropy_with_logits(d[:32], torch.zeros(32))
                + F.binary_cross_entropy_with_logits(d[32:], torch.ones(32))
            ).item()

    base = DANN((3, 28, 28), lr=0.05, momentum=0.0)
    before = domain_loss(base)
    for lam, expect_up in ((5.0, True), (0.0, False)):
        model = copy.deepcopy(base)
        for p in model.domain_classifier.parameters():
            p.requires_grad_(False)
        for p in model.label_predictor.parameters():
            p.requires_grad_(False)
        opt = torch.optim.SGD(model.features.parameters(), lr=0.05)
        losses = model.losses(xs, ys, xt, lam)
        opt.zero_grad()
        losses["loss/domain"].backward()
        opt.step()
        assert (domain_loss(model) > before) == expect_up


def test_source_only_and_target_only_train_only_the_classifier():
    model = DANN((3, 28, 28), mode="source-only")
    assert model.domain_classifier is None
    optimizers = model.configure_optimizers()
    ctx = StepContext.single_process(optimizers, 10)
    metrics = model.train_step(_batch(), ctx)
    assert set(metrics) == {"loss", "loss/class", "acc/train"}


def test_target_only_refuses_unlabeled_target():
    model = DANN((3, 28, 28), mode="target-only")
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    with pytest.raises(DataError, match="unlabeled"):
        model.train_step(_batch(), ctx)


def test_mismatched_domain_shapes_are_a_clear_error():
    model = DANN((3, 28, 28))
    with pytest.raises(DataError, match=r"\(3, 28, 28\).*\(1, 28, 28\)"):
        model.losses(
            torch.rand(2, 3, 28, 28),
            torch.zeros(2, dtype=torch.long),
            torch.rand(2, 1, 28, 28),
            1.0,
        )


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="mode"):
        DANN(mode="adversarial")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="backbone"):
        DANN(backbone="vgg99")
    with pytest.raises(ConfigError, match="cannot take images"):
        DANN((3, 8, 8))


def test_dann_lr_schedule_is_applied_per_step():
    model = DANN((3, 28, 28), lr=0.01)
    optimizers = model.configure_optimizers()
    scheduler = model.configure_schedulers(optimizers, total_steps=100)["model"]
    for _ in range(50):
        optimizers["model"].step()
        scheduler.step()
    assert optimizers["model"].param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 10 * 0.5) ** 0.75)


@pytest.mark.slow
def test_tiny_dann_run_beats_source_only_on_the_target():
    """Real MNIST digits -> MNIST-M-style digits (both embedded), 600 steps, fixed seed."""
    from counterfeit.adapt import accuracy, predict
    from counterfeit.gan import Trainer, TrainerConfig
    from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain

    source = build_domain(DomainSpec(name="mnist-small"), "train", 28).take(2000)
    target = build_domain(DomainSpec(name="mnistm-style"), "train", 28).take(2000, seed=1)
    target_test = build_domain(DomainSpec(name="mnistm-style"), "test", 28).take(500)
    accuracies = {}
    for mode in ("source-only", "dann"):
        torch.manual_seed(0)
        model = DANN((3, 28, 28), mode=mode)
        data = ZipLoader(
            InfiniteLoader(source, 32, seed=0), InfiniteLoader(target.unlabeled(), 32, seed=1)
        )
        Trainer(model, data, TrainerConfig(max_steps=600, progress=False)).fit()
        accuracies[mode] = accuracy(predict(model, target_test))
    assert accuracies["source-only"] > 0.4  # it learned the digits
    assert accuracies["dann"] > accuracies["source-only"] + 0.02, accuracies


def test_resnet_backbone_with_local_weights(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    model = DANN((3, 32, 32), backbone="resnet18", backbone_weights=tmp_path / "resnet18.pth")
    assert model.n_features == 512
    loaded = model.features[1]
    assert torch.equal(loaded.conv1.weight, reference.conv1.weight)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ConfigError, match="3-channel"):
        DANN((1, 32, 32), backbone="resnet18")
    with pytest.raises(ConfigError, match="takes no weights"):
        DANN((3, 28, 28), backbone_weights=tmp_path / "resnet18.pth")


class _KillClassifier:
    """From step ``start`` on, zero the label predictor: source accuracy falls to chance."""

    def __init__(self, start):
        self.every, self.start = 1, start

    def on_step(self, trainer, step):
        if step >= self.start:
            with torch.no_grad():
                for p in trainer.method.label_predictor.parameters():
                    p.zero_()

    def on_end(self, trainer):
        return None


@pytest.mark.parametrize(
    ("validator", "what"),
    [("source-accuracy", "source validation accuracy"), ("im", "the im score")],
)
def test_collapse_guard_restores_the_weights_from_before_the_fall_and_stops(validator, what):
    from counterfeit.adapt import accuracy, predict
    from counterfeit.gan import Trainer, TrainerConfig
    from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain
    from counterfeit.recipes.tasks.dann import DANNTrainConfig, collapse_guard

    source = build_domain(DomainSpec(name="mnist-small"), "train", 28).take(600)
    source_val = build_domain(DomainSpec(name="mnist-small"), "test", 28).take(300)
    target = build_domain(DomainSpec(name="mnistm-style"), "train", 28).take(300, seed=1)
    torch.manual_seed(0)
    model = DANN((3, 28, 28))
    warm_up = torch.optim.Adam(model.parameters(), 1e-3)  # SGD at 0.01 needs ~10x the steps
    for _ in range(60):
        x, y = source.get_batch(torch.randint(len(source), (64,)))
        warm_up.zero_grad()
        F.cross_entropy(model(x), y).backward()
        warm_up.step()
    train = DANNTrainConfig(
        steps=100, eval_every=10, collapse_drop=0.2, collapse_validator=validator
    )
    guard = collapse_guard(train, source_val, target)
    data = ZipLoader(
        InfiniteLoader(source, 32, seed=0), InfiniteLoader(target.unlabeled(), 32, seed=1)
    )
    result = Trainer(
        model,
        data,
        TrainerConfig(max_steps=100, progress=False, seed=0),
        callbacks=[_KillClassifier(start=21), guard],  # the sabotage runs first
    ).fit()
    assert result.steps == 30
    assert result.stopped_early.startswith(f"collapse at step 30: {what}")
    assert "weights restored to step 20" in result.stopped_early
    assert guard.measure(model) == pytest.approx(guard.previous)  # the step-20 weights
    assert accuracy(predict(model, source_val)) > 0.5  # the step-20 model reads the digits


def test_collapse_guard_settings_are_checked():
    from counterfeit.gan import CollapseStop

    with pytest.raises(ConfigError, match="every must be >= 1"):
        CollapseStop(lambda m: 0.0, every=0)
    with pytest.raises(ConfigError, match="drop must be > 0"):
        CollapseStop(lambda m: 0.0, every=5, drop=0)
    with pytest.raises(ConfigError, match="needs a score function"):
        CollapseStop(None, every=5)


def test_a_classifier_that_never_learned_the_source_is_flagged():
    from counterfeit.recipes.tasks.common.adaptation import did_not_learn

    assert did_not_learn("dann", 0.95, 10) is None
    assert did_not_learn("source-only", 0.21, 10) is None
    warning = did_not_learn("dann", 0.11, 10)
    assert "source accuracy 0.110 (chance 0.100)" in warning and "lambda_max" in warning
    assert "lambda_max" not in did_not_learn("source-only", 0.11, 10)
