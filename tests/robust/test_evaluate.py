"""Corruptions and the robustness report: numbers checked by hand, warnings, files, MLflow."""

import itertools
import json
import warnings

import pytest
import torch
from mlflow import MlflowClient
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from counterfeit.gan import Tracker
from counterfeit.gan.data import DomainSpec, ImageTensors, build_domain
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.export import export_classifier, load_exported
from counterfeit.robust import (
    CORRUPTIONS,
    RobustnessReport,
    RobustnessWarning,
    compare_markdown,
    corrupt,
    evaluate,
    fgsm,
    pgd,
)
from tests.robust.conftest import sklearn_digits, trained_model


@pytest.fixture(scope="module")
def digits():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(96))


@pytest.fixture(scope="module")
def mnist_images():
    test = build_domain(DomainSpec(name="mnist-small"), "test", 28, channels=1)
    return test.get_batch(torch.arange(0, 1000, 25))[0]  # 40 digits of every class


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_damage_grows_with_severity(name, mnist_images):
    colour = torch.cat([mnist_images, 0.6 * mnist_images, 0.3 + 0.5 * mnist_images], dim=1)
    for images in (mnist_images, colour):
        damage = [
            float((corrupt(images, name, s, seed=0) - images).abs().mean()) for s in range(1, 6)
        ]
        assert all(a < b for a, b in itertools.pairwise(damage)), (name, damage)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruptions_are_seeded_and_keep_shape_and_range(name, mnist_images):
    images = mnist_images[:8]
    out = corrupt(images, name, 3, seed=1)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(out, corrupt(images, name, 3, seed=1))
    assert torch.equal(images, mnist_images[:8])  # input untouched


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda x: corrupt(x, "fog", 1), ConfigError, "unknown corruption(s) fog; known: gaussian"),
        (lambda x: corrupt(x, "contrast", 6), ConfigError, "severity must be one of 1-5"),
        (lambda x: corrupt(x[0], "contrast", 1), DataError, "(N, C, H, W)"),
    ],
)
def test_corruption_errors_name_the_problem(call, error, message, mnist_images):
    with pytest.raises(error) as info:
        call(mnist_images)
    assert message in str(info.value)


def test_report_numbers_equal_a_hand_computation(digits):
    model = trained_model()
    x, y = digits
    eps = [0.0, 0.05, 0.1]
    report = evaluate(
        model,
        (x, y),
        attacks=["fgsm", "pgd"],
        eps=eps,
        corruptions=["gaussian_noise", "contrast"],
        severities=[1, 5],
        attack_options={"pgd": {"steps": 5}},
        batch_size=1000,
        seed=0,
    )

    def correct(images):
        with torch.no_grad():
            return model(images).argmax(1) == y

    clean = correct(x)
    generator = torch.Generator().manual_seed(0)  # evaluate's PGD random start, in its order
    assert report.n == len(y)
    assert report.clean_accuracy == pytest.approx(float(clean.float().mean()))
    for i, e in enumerate(eps):
        if e == 0:
            ok_fgsm = ok_pgd = clean
        else:
            ok_fgsm = correct(fgsm(model, x, y, e))
            ok_pgd = correct(pgd(model, x, y, e, steps=5, generator=generator))
        assert report.attacks["fgsm"][i] == pytest.approx(float(ok_fgsm.float().mean()))
        assert report.attacks["pgd"][i] == pytest.approx(float(ok_pgd.float().mean()))
        worst = float((clean & ok_fgsm & ok_pgd).float().mean())
        assert report.worst_case[i] == pytest.approx(worst)
        assert report.worst_case[i] <= min(report.attacks["fgsm"][i], report.attacks["pgd"][i])
    assert report.attacks["pgd"][-1] < report.clean_accuracy - 0.2
    for name in ("gaussian_noise", "contrast"):
        for j, severity in enumerate([1, 5]):
            expected = float(correct(corrupt(x, name, severity, seed=0)).float().mean())
            assert report.corruptions[name][j] == pytest.approx(expected)
    values = [v for row in report.corruptions.values() for v in row]
    assert report.mean_corruption_accuracy == pytest.approx(sum(values) / len(values))
    assert report.settings["attacks"]["pgd"] == "pgd(steps=5, norm=inf)"


def test_every_data_form_gives_the_same_report(digits):
    model = trained_model()
    x, y = digits
    dataset = ImageTensors((x * 255).round().byte(), y, "digits")
    kwargs = dict(attacks=["fgsm"], eps=[0.1], corruptions=["contrast"], severities=[5])
    reports = [
        evaluate(model, dataset, **kwargs),
        evaluate(model, (x, y), batch_size=40, **kwargs),
        evaluate(model, DataLoader(TensorDataset(x, y), batch_size=32), **kwargs),
    ]
    for r in reports[1:]:
        assert r.n == reports[0].n == len(y)
        assert r.clean_accuracy == pytest.approx(reports[0].clean_accuracy)
        assert r.attacks["fgsm"] == pytest.approx(reports[0].attacks["fgsm"])
        assert r.corruptions["contrast"] == pytest.approx(reports[0].corruptions["contrast"])
    limited = evaluate(model, dataset, max_examples=50, **kwargs)
    assert limited.n == 50
    # an ImageTensors is read in a seeded random order: the examples mix classes
    assert len(set(limited.examples.labels.tolist())) > 3


def test_train_mode_and_probability_outputs_are_warned_about(digits):
    model = trained_model().train()
    x, y = digits
    kwargs = dict(attacks=["fgsm"], eps=[0.1], corruptions=None)
    with pytest.warns(RobustnessWarning, match="train mode"):
        report = evaluate(model, (x, y), **kwargs)
    assert model.training  # restored
    assert any("train mode" in w for w in report.warnings)
    softmax = nn.Sequential(trained_model(), nn.Softmax(dim=1)).eval()
    with pytest.warns(RobustnessWarning, match="outputs are probabilities"):
        evaluate(softmax, (x, y), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RobustnessWarning)
        evaluate(trained_model(), (x, y), **kwargs)


def test_exported_programs_evaluate_without_a_mode_warning(tmp_path, digits):
    x, y = digits
    exported = load_exported(export_classifier(trained_model(), x[:2], tmp_path / "m.pt2"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RobustnessWarning)
        report = evaluate(exported, (x, y), attacks=["fgsm"], eps=[0.0, 0.1], corruptions=None)
    direct = evaluate(trained_model(), (x, y), attacks=["fgsm"], eps=[0.0, 0.1], corruptions=None)
    assert report.attacks["fgsm"] == pytest.approx(direct.attacks["fgsm"])


def test_report_files_round_trip_and_reach_mlflow(tmp_path, digits, mlflow_uri):
    x, y = digits
    report = evaluate(
        trained_model(),
        (x, y),
        eps=[0.0, 0.1],
        corruptions=["contrast", "pixelate"],
        attack_options={"pgd": {"steps": 3}},
        name="tiny-cnn",
    )
    with Tracker(experiment="robust-tests", run_name="report") as tracker:
        paths = report.save(tmp_path / "out", tracker=tracker, prefix="tiny/")
    data = json.loads(paths["json"].read_text())
    assert data["clean_accuracy"] == report.clean_accuracy and data["eps"] == [0.0, 0.1]
    assert RobustnessReport.from_json(paths["json"]) == report
    text = paths["markdown"].read_text()
    assert f"# Robustness of tiny-cnn on the given images ({len(x)} images)" in text
    assert f"| 0.1 (= 25.5/255) | {report.attacks['fgsm'][1]:.4f} |" in text
    assert "| contrast |" in text and "**mean**" in text
    for name in ("eps_curve", "corruptions", "adversarial_examples", "corruption_examples"):
        assert paths[name].suffix == ".png" and paths[name].stat().st_size > 5000
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics["tiny/pgd/eps_0.1"] == pytest.approx(report.attacks["pgd"][1])
    assert run.data.metrics["tiny/corruption/mean"] == pytest.approx(
        report.mean_corruption_accuracy
    )
    logged = {a.path for a in client.list_artifacts(tracker.run_id, "robustness/tiny")}
    assert {"robustness/tiny/report.json", "robustness/tiny/plots"} <= logged


def test_compare_markdown_puts_models_side_by_side(digits):
    x, y = digits
    kwargs = dict(attacks=["fgsm"], eps=[0.0, 0.1], corruptions=None)
    reports = {"a": evaluate(trained_model(), (x, y), **kwargs)}
    reports["b"] = evaluate(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval(), (x, y), **kwargs)
    table = compare_markdown(reports).splitlines()
    assert table[0] == "| model | clean | fgsm 0.1 |"
    assert table[2].startswith(f"| a | {reports['a'].clean_accuracy:.4f} |")
    assert len(table) == 4


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(attacks=["deepfool"]), ConfigError, "unknown attack(s) deepfool"),
        (dict(eps=[0.1, 2.0]), ConfigError, "eps values must be numbers in [0, 1]"),
        (dict(attack_options={"pgd": {"stepz": 3}}), ConfigError, "unknown option(s) stepz"),
        (dict(attack_options={"bim": {"steps": 3}}), ConfigError, "bim, which is not evaluated"),
        (dict(corruptions=["snow"]), ConfigError, "unknown corruption(s) snow"),
        (dict(severities=[0]), ConfigError, "severities must be integers in 1-5"),
        (dict(batch_size=0), ConfigError, "batch_size must be an integer >= 1"),
    ],
)
def test_bad_evaluation_settings_are_config_errors(kwargs, error, message, digits):
    with pytest.raises(error) as info:
        evaluate(trained_model(), digits, **kwargs)
    assert message in str(info.value)


def test_bad_data_and_models_are_data_errors(digits):
    x, y = digits
    unlabeled = ImageTensors((x * 255).byte(), None, "no-labels")
    with pytest.raises(DataError, match="no-labels has unlabeled images"):
        evaluate(trained_model(), unlabeled, corruptions=None)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 9\]"):
        evaluate(trained_model(), (x, y + 10), corruptions=None)
    with pytest.raises(DataError, match="must return logits"):
        evaluate(nn.Identity().eval(), (x, y), corruptions=None)
