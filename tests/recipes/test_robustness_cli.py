"""`counterfeit robustness`, the robustness recipes, and loading models safely."""

import json
import re

import pytest
import torch
from mlflow import MlflowClient
from torch import nn

from counterfeit.adapt import DANN
from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.errors import CheckpointError, ConfigError, ShapeError, reason
from counterfeit.gan.export import export_classifier
from counterfeit.recipes.cli import main
from counterfeit.robust import evaluate, load_model
from counterfeit.robust.loading import check_input, detect_format, input_shape
from tests.robust.conftest import one_torch_thread, sklearn_digits, trained_model  # noqa: F401

ARCH_MODULE = """
from torch import nn
from counterfeit.robust import digits_cnn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = digits_cnn(1, 10, 8)

    def forward(self, x):
        return self.body(x)
"""


@pytest.fixture
def images():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(16))[0]


@pytest.fixture
def saved(tmp_path, images):
    """The trained model saved every way a user might hand it to us."""
    model = trained_model()
    (tmp_path / "tiny_arch.py").write_text(ARCH_MODULE)
    paths = {
        "pt2": export_classifier(model, images[:2], tmp_path / "model.pt2"),
        "torchscript": tmp_path / "model.ts",
        "state_dict": tmp_path / "weights.pt",
        "pickle": tmp_path / "whole.pt",
    }
    torch.jit.save(torch.jit.script(model), paths["torchscript"])
    torch.save({"body." + k: v for k, v in model.state_dict().items()}, paths["state_dict"])
    torch.save(model, paths["pickle"])
    return model, paths


def test_every_safe_format_loads_to_the_same_classifier(saved, images):
    model, paths = saved
    expected = model(images)
    assert detect_format(paths["pt2"]) == "torch.export"
    assert detect_format(paths["torchscript"]) == "torchscript"
    assert detect_format(paths["state_dict"]) == "torch.save"
    for loaded in (
        load_model(paths["pt2"]),
        load_model(paths["torchscript"]),
        load_model(paths["state_dict"], arch="tiny_arch:Net"),  # tiny_arch.py in the cwd
        load_model(paths["pickle"], trust_pickle=True),
    ):
        assert torch.allclose(loaded(images), expected, atol=1e-5)
    assert input_shape(load_model(paths["pt2"])) == (1, 8, 8)
    assert input_shape(load_model(paths["torchscript"])) is None


@pytest.mark.parametrize(
    "path_key, kwargs, error, message",
    [
        ("pickle", {}, CheckpointError, "pass --trust-pickle"),
        ("state_dict", {}, CheckpointError, "pass --arch module:Class"),
        ("state_dict", {"arch": "tiny_arch"}, ConfigError, "must look like module:Class"),
        ("state_dict", {"arch": "no_such_module:Net"}, ConfigError, "cannot import"),
        ("state_dict", {"arch": "tiny_arch:Missing"}, ConfigError, "has no attribute 'Missing'"),
        (
            "state_dict",
            {"arch": "counterfeit.robust.models:digits_cnn"},
            CheckpointError,
            "does not match",
        ),
        ("pt2", {"arch": "tiny_arch:Net"}, ConfigError, "Drop --arch"),
        ("junk", {}, CheckpointError, "junk.pt is not a model file: it is a text file"),
        ("missing", {}, CheckpointError, "model file not found"),
    ],
)
def test_unsafe_or_incomplete_models_are_refused_clearly(saved, path_key, kwargs, error, message):
    _, paths = saved
    if path_key == "junk":
        paths["junk"] = paths["pt2"].with_name("junk.pt")
        paths["junk"].write_bytes(b"not a model at all")
    paths["missing"] = paths["pt2"].with_name("missing.pt2")
    with pytest.raises(error) as info:
        load_model(paths[path_key], **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty (0 bytes)"),
        (b"PK\x03\x04 and then the file stops", "damaged or truncated zip archive"),
        (b"layer1.weight: 0.5\n", "is not a model file: it is a text file"),
        (bytes(range(1, 40)), "neither a zip archive nor a pickle"),
    ],
)
def test_a_file_that_is_no_model_says_what_it_is(tmp_path, content, message):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_model(path)


def test_a_renamed_program_loads_silently(saved, images, capfd):
    _, paths = saved
    renamed = paths["pt2"].with_name("classifier.bin")
    renamed.write_bytes(paths["pt2"].read_bytes())
    assert torch.allclose(load_model(renamed)(images), load_model(paths["pt2"])(images))
    assert capfd.readouterr().err == ""


class Conv32(nn.Module):
    """A grey 32 px classifier: a convolution, then a dense layer fixed to 32x32."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_the_probe_names_the_shape_a_model_expects(tmp_path):
    scripted = tmp_path / "conv32.pt"
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(Conv32().eval()), str(scripted))
    model = load_model(scripted)
    check_input(model, (1, 32, 32), "conv32.pt")  # the right shape passes
    for given in [(3, 28, 28), (1, 28, 28), (3, 32, 32)]:
        with pytest.raises(ShapeError) as info:
            check_input(model, given, "conv32.pt")
        shown = "x".join(map(str, given))
        assert str(info.value).startswith(
            f"conv32.pt expects 1x32x32 images; the data gives {shown}"
        )
        assert "--channels 1 --image-size 32" in str(info.value)
    exported = load_model(export_classifier(Conv32(), torch.rand(2, 1, 32, 32), tmp_path / "c.pt2"))
    with pytest.raises(ShapeError, match="expects 1x32x32 images; the data gives 3x8x8"):
        check_input(exported, (3, 8, 8))


def test_the_probe_reports_torch_when_no_common_shape_fits():
    odd = nn.Sequential(nn.Conv2d(5, 2, 3), nn.Flatten(), nn.Linear(2 * 5 * 5, 10)).eval()
    with pytest.raises(ShapeError) as info:
        check_input(odd, (1, 28, 28), "odd.pt")
    text = str(info.value)
    assert text.startswith("odd.pt fails on a batch of 1x28x28 images (the data's shape): ")
    assert "RuntimeError" in text and "5 channels" in text and "\n" not in text
    with pytest.raises(ShapeError, match="returns \\(2, 1, 4, 4\\) for 2 images"):
        check_input(nn.Identity(), (1, 4, 4), "identity.pt")


def test_reason_keeps_the_line_that_names_the_cause():
    scripted = torch.jit.script(nn.Conv2d(1, 2, 3))
    with pytest.raises(RuntimeError) as info:
        scripted(torch.zeros(1, 3, 8, 8))
    assert reason(info.value).startswith("RuntimeError: Given groups=1, weight of size")
    pickled = RuntimeError(
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` "
        "will likely succeed.\nPlease file an issue: WeightsUnpickler error: \n\n"
        "Unsupported operand 101\n\nCheck the documentation of torch.load"
    )
    assert reason(pickled) == "RuntimeError: Unsupported operand 101"
    long = ValueError("word " * 100)
    assert reason(long, limit=42) == "ValueError: " + "word " * 7 + "word..."


def test_robustness_command_writes_the_report_and_an_mlflow_run(saved, tmp_path, mlflow_uri):
    _, paths = saved
    out = tmp_path / "report"
    args = ["robustness", "--model", str(paths["pt2"]), "--data", "sklearn-digits"]
    args += ["--n", "48", "--eps", "0,8/255,0.1", "--corruptions", "contrast,pixelate"]
    args += ["--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 48 and report["eps"] == pytest.approx([0.0, 8 / 255, 0.1])
    assert set(report["attacks"]) == {"fgsm", "pgd"} and set(report["corruptions"]) == {
        "contrast",
        "pixelate",
    }
    assert "| contrast |" in (out / "report.md").read_text()
    assert {"eps_curve.png", "corruptions.png", "adversarial_examples.png"} <= {
        p.name for p in (out / "plots").iterdir()
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["pgd/eps_0.1"] == report["attacks"]["pgd"][2]
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["clean_accuracy"] == pytest.approx(report["clean_accuracy"])
    # the same model as TorchScript needs the image shape spelled out
    ts = ["robustness", "--model", str(paths["torchscript"]), "--data", "sklearn-digits"]
    ts += ["--n", "48", "--eps", "0,0.1", "--corruptions", "none", "--out", str(tmp_path / "ts")]
    with pytest.raises(ConfigError, match="cannot tell which image shape"):
        main_raising(ts)
    assert main([*ts, "--image-size", "8", "--channels", "1", "--no-mlflow"]) == 0
    again = json.loads((tmp_path / "ts" / "report.json").read_text())
    assert again["attacks"]["fgsm"][1] == pytest.approx(report["attacks"]["fgsm"][2])


def test_autoattack_from_the_command_line_prints_and_writes_its_stages(saved, tmp_path, capsys):
    _, paths = saved
    out = tmp_path / "aa"
    args = ["robustness", "--model", str(paths["pt2"]), "--data", "sklearn-digits", "--n", "32"]
    args += ["--attacks", "pgd,autoattack,deepfool", "--eps", "0,0.3", "--norm", "Linf"]
    assert main([*args, "--corruptions", "none", "--no-mlflow", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    table = report["stages"]["autoattack"]["0.3"]
    assert [stage for stage, _ in table] == ["clean", "apgd-ce", "apgd-t", "square"]
    assert table[-1][1] == pytest.approx(report["attacks"]["autoattack"][1])
    assert report["attacks"]["autoattack"][1] <= report["attacks"]["pgd"][1]
    assert "autoattack at eps 0.3: clean" in capsys.readouterr().out
    assert "robust accuracy after each stage" in (out / "report.md").read_text()
    assert report["minimum_norm"]["deepfool"]["success"] > 0.9  # a minimum-norm attack, no eps


def main_raising(argv):
    """Run a CLI handler without main()'s error printing, to see the exception."""
    from counterfeit.recipes.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.handler(args)


def test_normalize_flag_wraps_a_model_that_wants_normalized_input(tmp_path, images):
    model = trained_model()

    class ExpectsNormalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, z):
            return self.inner(z * 0.1 + 0.5)  # undoes (x - 0.5) / 0.1

    path = export_classifier(ExpectsNormalized(), images[:2], tmp_path / "norm.pt2")
    args = ["robustness", "--model", str(path), "--data", "sklearn-digits", "--n", "32"]
    args += ["--eps", "0,0.1", "--corruptions", "none", "--no-mlflow"]
    assert main([*args, "--normalize", "0.5,0.1", "--out", str(tmp_path / "wrapped")]) == 0
    assert main([*args, "--out", str(tmp_path / "forgot")]) == 0
    wrapped, forgot = (
        json.loads((tmp_path / name / "report.json").read_text()) for name in ("wrapped", "forgot")
    )
    _, test = sklearn_digits()  # the command reads the same seeded subset
    plain = evaluate(model, test, ["fgsm", "pgd"], [0.0, 0.1], None, max_examples=32)
    for attack, curve in plain.attacks.items():  # normalization inside the model: same numbers
        assert wrapped["attacks"][attack] == pytest.approx(curve)
    assert forgot["clean_accuracy"] < plain.clean_accuracy - 0.3


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "nowhere-domain"], "neither a domain"),
        (["--data", "sklearn-digits", "--eps", "0,x"], "--eps expects numbers"),
        (["--data", "sklearn-digits", "--attacks", "nosuch"], "attacks.0"),
        (["--data", "sklearn-digits", "--corruptions", "fog"], "unknown corruption(s) fog"),
        (["--data", "sklearn-digits", "--norm", "L2", "--attacks", "fgsm"], "fgsm is an L-inf"),
        (["--data", "sklearn-digits", "--normalize", "0.5"], "even count of numbers"),
    ],
)
def test_bad_robustness_arguments_are_one_clear_message(saved, extra, message, capsys):
    _, paths = saved
    assert main(["robustness", "--model", str(paths["pt2"]), *extra, "--no-mlflow"]) == 2
    assert message in capsys.readouterr().err


def test_pickled_model_is_refused_by_the_command(saved, capsys):
    _, paths = saved
    args = ["robustness", "--model", str(paths["pickle"]), "--data", "sklearn-digits"]
    assert main([*args, "--no-mlflow"]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and "Traceback" not in err
    out = ["--out", "trusted", "--n", "16", "--eps", "0", "--corruptions", "none"]
    out += ["--image-size", "8", "--channels", "1"]
    assert main([*args, *out, "--trust-pickle", "--no-mlflow"]) == 0


TINY_ROBUST = [
    "train.steps=12",
    "train.progress=false",
    "train.log_every=4",
    "train.checkpoint_every=6",
    "adversarial.check_every=4",
    "evaluation.n=40",
    "evaluation.eps=[0.0,0.3]",
    "evaluation.corruptions=[contrast]",
    "evaluation.severities=[1,5]",
    "evaluation.attack_options={pgd: {steps: 3}}",
]


def test_adversarial_training_recipe_trains_exports_and_compares(tmp_path, mlflow_uri):
    out = tmp_path / "at"
    args = ["run", "digits-adversarial-training", "--out", str(out)]
    assert main(args + [f"--set={o}" for o in TINY_ROBUST]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for method in ("standard", "fgsm-rs"):
        assert (out / "models" / f"{method}.pt2").is_file()
        assert (out / "robustness" / method / "report.json").is_file()
        assert 0 <= summary["metrics"][f"{method}/pgd/eps_0.3"] <= 1
        assert summary["models"][method]["steps"] == 12
    assert (out / "plots" / "eps_curves.png").stat().st_size > 5000
    comparison = (out / "robustness.md").read_text()
    assert "| standard |" in comparison and "| fgsm-rs |" in comparison
    client = MlflowClient(tracking_uri=mlflow_uri)
    run_id = summary["mlflow"]["run_id"]
    # the early-stop check ran during FGSM-RS training and was logged
    assert len(client.get_metric_history(run_id, "fgsm-rs/heldout/pgd_accuracy")) == 2
    assert "robustness" in {a.path for a in client.list_artifacts(run_id)}


def test_adapted_robustness_compares_every_model_digits_da_ships(tmp_path, capsys):
    missing = main(["run", "adapted-robustness", "--set", "tracking.enabled=false"])
    assert missing == 2
    assert "run `counterfeit run digits-da` first" in capsys.readouterr().err
    # stand-ins for digits-da's exports, where the recipe expects them (cwd is tmp_path):
    # an untrained net and one trained to read the clean target images
    torch.manual_seed(0)
    data = build_domain(DomainSpec(name="mnistm-style"), "train", 28).take(128)
    x, y = data.get_batch(torch.arange(len(data)))
    trained = DANN((3, 28, 28), mode="source-only")
    optimizer = torch.optim.Adam(trained.parameters(), 1e-3)
    for _ in range(40):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trained(x), y).backward()
        optimizer.step()
    models = {"untrained": DANN((3, 28, 28)), "trained": trained}
    for name, model in models.items():
        export_classifier(model.eval().classifier(), x[:2], f"runs/digits-da/models/{name}.pt2")
    overrides = [
        "models={untrained: runs/digits-da/models/untrained.pt2, "
        "trained: runs/digits-da/models/trained.pt2}",
        "evaluation.n=32",
        "evaluation.eps=[0,0.05]",
        "evaluation.corruptions=[jpeg_compression]",
        "evaluation.severities=[3]",
        "data.split=train",
        "tracking.enabled=false",
    ]
    assert main(["run", "adapted-robustness", *[f"--set={o}" for o in overrides]]) == 0
    out = tmp_path / "runs" / "adapted-robustness"
    reports = {
        name: json.loads((out / "robustness" / name / "report.json").read_text()) for name in models
    }
    assert all(r["n"] == 32 and len(r["attacks"]["pgd"]) == 2 for r in reports.values())
    assert reports["trained"]["clean_accuracy"] > reports["untrained"]["clean_accuracy"] + 0.3
    comparison = (out / "robustness.md").read_text()
    assert "| untrained |" in comparison and "| trained |" in comparison
    assert (out / "plots" / "eps_curves.png").is_file()


def test_fgsm_recipe_trains_a_classifier_that_fgsm_degrades(tmp_path):
    """`counterfeit run digits-fgsm` on short settings: the CNN learns, eps 0 is clean
    accuracy, and accuracy never rises as FGSM's eps grows."""
    out = tmp_path / "fgsm"
    tiny = [
        "device=cpu",
        "train.steps=60",
        "train.progress=false",
        "tracking.enabled=false",
        "evaluation.n=200",
        "evaluation.eps=[0.0,0.1,0.3]",
        "evaluation.attack_options={pgd: {steps: 3}}",
    ]
    assert main(["run", "digits-fgsm", "--out", str(out), *[f"--set={o}" for o in tiny]]) == 0
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    clean = metrics["standard/clean_accuracy"]
    fgsm = [metrics[f"standard/fgsm/eps_{eps}"] for eps in ("0", "0.1", "0.3")]
    assert clean > 0.6, clean
    assert fgsm[0] == clean
    assert fgsm[0] >= fgsm[1] >= fgsm[2] and fgsm[2] < clean - 0.2, fgsm
    assert metrics["standard/pgd/eps_0.3"] <= fgsm[2] + 0.02
