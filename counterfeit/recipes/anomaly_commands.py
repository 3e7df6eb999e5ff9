"""``counterfeit anomaly fit`` and ``counterfeit anomaly score``: a detector for one's own data.

``fit`` learns the normal class(es) of a dataset (a built-in domain or a folder
``DIR/CLASS/*.png``), sets the threshold on held-out normal images at a chosen false-alarm
rate, and saves ``OUT/detector.pt``; with a built-in domain it also reports the AUROC of the
normal class against the others on the test split. ``score`` reads that file and scores
image files or folders: ``OUT/scores.csv`` (path, score, flagged), the residual maps
``OUT/maps/*.png`` of detectors that rebuild images, and the most anomalous images as a
figure.

The detector's settings default to the ``mnist-anomaly`` recipe's CPU budget for that method;
``--set key=value`` changes any of them.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from counterfeit.gan.data.domains import DOMAINS, DomainSpec, build_domain
from counterfeit.gan.data.files import load_image_folder, read_image_batch
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import resolve_device
from counterfeit.robust.anomaly import (
    AnomalyDetector,
    build_detector,
    detection_scores,
    hold_out,
    load_detector,
)
from counterfeit.robust.anomaly.plots import score_histogram_figure, top_anomalies_figure

BUDGET_RECIPE = "mnist-anomaly"


def default_settings(method: str) -> dict[str, Any]:
    """The ``mnist-anomaly`` recipe's settings for ``method`` (its CPU budget)."""
    from counterfeit.recipes.loader import load_recipe

    return dict(load_recipe(BUDGET_RECIPE).recipe.detectors.get(method, {}))


def normal_label(dataset: ImageTensors, normal: str, folder: Path | None) -> int:
    """The label of class ``normal``: a number, or a class folder's name."""
    if normal.lstrip("-").isdigit():
        label = int(normal)
    elif folder is not None:
        names = sorted(
            p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if normal not in names:
            raise ConfigError(f"--normal '{normal}': {folder} has classes {', '.join(names)}.")
        label = names.index(normal)
    else:
        raise ConfigError(f"--normal '{normal}': {dataset.name}'s classes are numbers.")
    present = sorted(int(c) for c in dataset.labels.unique() if c >= 0)
    if label not in present:
        raise ConfigError(f"--normal {normal}: {dataset.name} has classes {present}.")
    return label


def load_fit_data(
    data: str, data_root: str | None, size: int, channels: int
) -> tuple[ImageTensors, ImageTensors | None, Path | None]:
    """(training images, labelled test images or None, the folder when ``data`` is one)."""
    if data in DOMAINS:
        spec = DomainSpec(name=data, root=data_root)
        return (
            build_domain(spec, "train", size, channels),
            build_domain(spec, "test", size, channels),
            None,
        )
    folder = Path(data).expanduser()
    if folder.is_dir():
        return load_image_folder(folder, size, channels), None, folder
    raise ConfigError(f"--data '{data}' is neither a known domain nor a folder of images.")


def run_anomaly_fit(
    data: str,
    method: str,
    out: str | Path,
    normal: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    data_root: str | None = None,
    image_size: int = 28,
    channels: int = 1,
    false_alarm: float = 0.05,
    validation_fraction: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """The ``counterfeit anomaly fit`` command; returns the saved detector's path."""
    settings = {**default_settings(method), **(settings or {})}
    # a bad method or setting fails before the data loads
    detector = build_detector(method, seed, str(resolve_device(device)), **settings)
    train, test, folder = load_fit_data(data, data_root, image_size, channels)
    if normal:
        labels = [normal_label(train, n, folder) for n in normal]
        keep = torch.isin(train.labels, torch.tensor(labels))
    elif train.labels.ge(0).any():
        raise ConfigError(f"{data} has classes: name the normal one(s) with --normal.")
    else:
        labels, keep = [], torch.ones(len(train), dtype=torch.bool)
    images = train.as_floats()[0][keep]
    fit_images, val_images = hold_out(images, validation_fraction, seed, data)
    n_val = len(val_images)
    print(f"fitting {method} on {len(fit_images)} normal images of {data} ({n_val} held out)")
    started = time.perf_counter()
    torch.manual_seed(seed)
    detector.fit(fit_images)
    fit_seconds = time.perf_counter() - started
    normal_scores, anomaly_scores = detector.score(val_images), None
    threshold = detector.calibrate_on_scores(normal_scores, false_alarm)
    out = Path(out)
    path = detector.save(out / "detector.pt")
    record: dict[str, Any] = {
        "method": method,
        "settings": detector.config(),
        "data": data,
        "normal": labels,
        "n_fit": len(fit_images),
        "n_validation": n_val,
        "threshold": threshold,
        "false_alarm": false_alarm,
        "fit_seconds": round(fit_seconds, 2),
        "detector": str(path),
    }
    if test is not None and labels:
        test_scores = detector.score(test.as_floats()[0])
        is_normal = torch.isin(test.labels, torch.tensor(labels))
        normal_scores, anomaly_scores = test_scores[is_normal], test_scores[~is_normal]
        record["test"] = detection_scores(normal_scores, anomaly_scores)
        record["test"]["detection_rate"] = float((anomaly_scores > threshold).float().mean())
        print(
            f"test split: AUROC {record['test']['auroc']:.3f} for {labels} against the other "
            f"classes; {record['test']['detection_rate']:.1%} of them flagged"
        )
    save_histogram(normal_scores, anomaly_scores, threshold, out / "scores.png")
    (out / "fit.json").write_text(json.dumps(record, indent=2))
    print(f"threshold {threshold:.4g} (at most {false_alarm:.0%} of held-out normal images above)")
    print(f"wrote {path}")
    return path


def save_histogram(
    normal: torch.Tensor, anomalous: torch.Tensor | None, threshold: float, path: Path
) -> None:
    """The score histogram (normal only when no anomalies are known) with the threshold."""
    import matplotlib.pyplot as plt

    empty = torch.empty(0)
    figure = score_histogram_figure(
        normal, anomalous if anomalous is not None else empty, threshold
    )
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def run_anomaly_score(
    checkpoint: str | Path,
    images: list[str],
    out: str | Path = "anomaly-scores",
    device: str = "cpu",
    skip_unreadable: bool = False,
) -> Path:
    """The ``counterfeit anomaly score`` command; returns the CSV's path."""
    detector = load_detector(checkpoint, device=str(resolve_device(device)))
    assert detector.image_shape is not None
    channels, size = detector.image_shape[0], detector.image_shape[-1]
    files, batch = read_image_batch(images, size, channels, skip_unreadable)
    scores = detector.score(batch)
    flagged = scores > detector.threshold if detector.threshold is not None else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "scores.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "score", "flagged"])
        for i, file in enumerate(files):
            writer.writerow(
                [str(file), f"{float(scores[i]):.6g}", "" if flagged is None else int(flagged[i])]
            )
    if detector.reconstructs:
        write_maps(detector, batch, files, out / "maps", scores)
    summary = f"scored {len(files)} images with {detector.name}"
    if flagged is not None:
        summary += f": {int(flagged.sum())} above the threshold {detector.threshold:.4g}"
    print(f"{summary}; wrote {csv_path}")
    return csv_path


def write_maps(
    detector: AnomalyDetector,
    images: torch.Tensor,
    files: list[Path],
    folder: Path,
    scores: torch.Tensor,
) -> None:
    """Each image's residual map as a grey PNG (|x - x_hat| on the [0, 1] scale: 255 is a
    pixel rebuilt entirely wrong), and the most anomalous images beside theirs."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    maps = detector.residual_map(images)
    for index, (file, residual) in enumerate(zip(files, maps)):
        pixels = residual[0].mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{index:06d}_{file.stem}.png")
    figure = top_anomalies_figure(images, scores, maps, n=min(8, len(images)))
    figure.savefig(folder.parent / "top_anomalies.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
