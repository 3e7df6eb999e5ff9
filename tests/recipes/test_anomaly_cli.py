"""``counterfeit anomaly fit`` and ``score`` as a user runs them: a built-in domain and a
folder of one's own images, a CSV that flags what is not normal, clear errors."""

import csv
import json

import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from counterfeit.gan.data import DomainSpec, build_domain
from counterfeit.robust.anomaly import load_detector
from tests.cli_process import run_cli


@pytest.fixture(scope="module")
def sevens_and_zeros(tmp_path_factory):
    """A user's folder ``DIR/seven/*.png`` + ``DIR/zero/*.png`` (embedded MNIST train digits),
    and a folder of unseen test digits ``TEST/*.png``: 20 sevens, then 20 zeros."""
    root = tmp_path_factory.mktemp("user-images")
    for split, folder in (("train", root / "train"), ("test", root / "test")):
        data = build_domain(DomainSpec(name="mnist-small"), split, 28, 1)
        for name, digit in (("seven", 7), ("zero", 0)):
            images = data.images[data.labels == digit][: 150 if split == "train" else 20]
            target = folder / name if split == "train" else folder
            target.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                Image.fromarray(image[0].numpy()).save(target / f"{name}_{i:03d}.png")
    return root


def read_scores(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_fit_on_a_builtin_domain_then_score_a_folder(tmp_path, sevens_and_zeros):
    out = tmp_path / "detector"
    fitted = run_cli(
        "anomaly", "fit", "--data", "mnist-small", "--normal", "7", "--method", "pca",
        "--out", str(out),
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    record = json.loads((out / "fit.json").read_text())
    assert record["normal"] == [7] and record["settings"] == {"components": 0.9}
    assert record["test"]["auroc"] > 0.9  # the 7s against the other test digits
    assert "AUROC" in fitted.stdout and (out / "scores.png").is_file()

    scored = run_cli(
        "anomaly", "score", "--checkpoint", str(out / "detector.pt"),
        str(sevens_and_zeros / "test"), "--out", str(tmp_path / "scores"),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    rows = read_scores(tmp_path / "scores" / "scores.csv")
    assert len(rows) == 40
    flagged = {
        name: [int(r["flagged"]) for r in rows if name in r["path"]] for name in ("zero", "seven")
    }
    assert sum(flagged["zero"]) > sum(flagged["seven"]) + 5  # the zeros are the anomalies
    maps = sorted((tmp_path / "scores" / "maps").iterdir())
    assert len(maps) == 40 and (tmp_path / "scores" / "top_anomalies.png").is_file()
    assert Image.open(maps[0]).size == (28, 28)


def test_fit_on_a_users_class_folders_by_name(tmp_path, sevens_and_zeros):
    out = tmp_path / "knn"
    fitted = run_cli(
        "anomaly", "fit", "--data", str(sevens_and_zeros / "train"), "--normal", "seven",
        "--method", "knn", "--set", "k=3", "--false-alarm", "0.1", "--out", str(out),
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    detector = load_detector(out / "detector.pt")
    assert detector.config() == {"k": 3} and detector.false_alarm == 0.1
    test = sorted((sevens_and_zeros / "test").iterdir())
    images = torch.stack([pil_to_tensor(Image.open(p)).float().div(255) for p in test])
    flags = detector.flag(images)
    zeros = torch.tensor(["zero_" in p.name for p in test])
    assert flags[zeros].float().mean() > flags[~zeros].float().mean()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "anogann", "--normal", "7"], "unknown anomaly detector 'anogann'"),
        (
            ["--method", "pca", "--normal", "7", "--set", "n_components=3"],
            "no setting 'n_components'",
        ),
        (["--method", "pca"], "name the normal one"),
        (["--method", "pca", "--normal", "12"], "mnist-small/train has classes"),
        (["--method", "pca", "--normal", "7", "--false-alarm", "5"], "must be in"),
    ],
)
def test_bad_fit_arguments_are_named(tmp_path, args, message):
    result = run_cli("anomaly", "fit", "--data", "mnist-small", *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "detector.pt").exists()


def test_score_refuses_what_is_not_a_detector(tmp_path):
    not_detector = tmp_path / "model.ckpt"
    torch.save({"method_class": "DANN", "method": {}}, not_detector)
    image = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(image)
    result = run_cli("anomaly", "score", "--checkpoint", str(not_detector), str(image))
    assert result.returncode == 2 and "not a saved anomaly detector" in result.stderr
