"""``counterfeit detect fit`` and ``counterfeit detect score``: a detector of generated images
for one's own real data and generators.

``fit`` trains a detector (:mod:`counterfeit.robust.counterfeits`) on the real images of a
built-in domain or a folder against fakes drawn from GAN checkpoints or read from folders,
sets its threshold on held-out validation images of both, reports the validation AUROC
and accuracy per fake source, and saves ``OUT/detector.pt``. ``score`` reads that file and
writes ``OUT/scores.csv`` (path, P(fake), flagged) for image files or folders.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.checkpoint import load_method, save_atomic
from counterfeit.gan.data import InfiniteLoader
from counterfeit.gan.data.domains import DOMAINS, DomainSpec, build_domain
from counterfeit.gan.data.files import load_image_folder, read_image_batch
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.runtime import resolve_device
from counterfeit.robust.counterfeits import (
    CounterfeitDetection,
    choose_threshold,
    detection_metrics,
    fake_probability,
    real_vs_fake,
)


def load_real(data: str, data_root: str | None, size: int, channels: int) -> ImageTensors:
    """The real images: a built-in domain's train split, or a folder of images."""
    if data in DOMAINS:
        return build_domain(DomainSpec(name=data, root=data_root), "train", size, channels)
    folder = Path(data).expanduser()
    if folder.is_dir():
        return load_image_folder(folder, size, channels)
    raise ConfigError(f"--real '{data}' is neither a known domain nor a folder of images.")


def load_fakes(
    source: str, n: int, size: int, channels: int, seed: int, device: str
) -> torch.Tensor:
    """``n`` fakes in [0, 1] from a GAN checkpoint (drawn) or a folder (read, all of them)."""
    from counterfeit.recipes.sample import draw_from_checkpoint

    path = Path(source).expanduser()
    if path.is_dir():
        return load_image_folder(path, size, channels).as_floats()[0]
    if not path.is_file():
        raise DataError(f"--fake {source}: no such checkpoint or folder.")
    return draw_from_checkpoint(path, [n], size, channels, seed, device)[0]


def _split(images: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    n_val = max(2, int(len(images) * fraction))
    if len(images) - n_val < 2:
        raise DataError(f"{len(images)} images are too few to hold out {n_val} for validation.")
    return images[order[n_val:]], images[order[:n_val]]


def run_detect_fit(
    real: str,
    fakes: list[str],
    out: str | Path,
    kind: str = "cnn",
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    augment: float = 0.5,
    n_fake: int = 2000,
    data_root: str | None = None,
    image_size: int = 28,
    channels: int = 1,
    validation_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """The ``counterfeit detect fit`` command; returns the saved detector's path."""
    torch.manual_seed(seed)
    detector = CounterfeitDetection(kind, channels, image_size, lr=lr, augment=augment, seed=seed)
    real_set = load_real(real, data_root, image_size, channels)
    real_images, real_val = _split(real_set.as_floats()[0], validation_fraction, seed)
    by_source = {
        source: _split(
            load_fakes(source, n_fake, image_size, channels, seed, device),
            validation_fraction,
            seed,
        )
        for source in fakes
    }
    fake_train = torch.cat([train for train, _ in by_source.values()])
    pixels = real_images.mul(255).round().to(torch.uint8)
    pairs = real_vs_fake(ImageTensors(pixels, None, real), fake_train, seed)
    print(f"training a {kind} detector on {len(pairs) // 2} real and {len(pairs) // 2} fake images")
    config = TrainerConfig(max_steps=steps, device=device, log_every=max(1, steps // 10), seed=seed)
    Trainer(
        detector, InfiniteLoader(pairs, batch_size, seed=seed), config, description="detect"
    ).fit()
    net = detector.net
    fake_val = torch.cat([val for _, val in by_source.values()])
    threshold = choose_threshold(fake_probability(net, real_val), fake_probability(net, fake_val))
    detector.threshold.fill_(threshold)
    validation = {
        source: detection_metrics(net, real_val, val, threshold)
        for source, (_, val) in by_source.items()
    }
    out = Path(out)
    path = save_atomic(
        {
            "method_class": type(detector).__name__,
            "method_init": detector.init_args(),
            "method": detector.state_dict(),
        },
        out / "detector.pt",
    )
    record: dict[str, Any] = {
        "kind": kind, "real": real, "fakes": fakes, "threshold": threshold, "steps": steps,
        "validation": validation, "detector": str(path),
    }  # fmt: skip
    (out / "fit.json").write_text(json.dumps(record, indent=2))
    for source, values in validation.items():
        print(
            f"validation, {source}: AUROC {values['auroc']:.3f}, accuracy {values['accuracy']:.3f}"
        )
    print(f"threshold P(fake) > {threshold:.4g}; wrote {path}")
    return path


def run_detect_score(
    checkpoint: str | Path,
    images: list[str],
    out: str | Path = "detect-scores",
    device: str = "cpu",
    skip_unreadable: bool = False,
) -> Path:
    """The ``counterfeit detect score`` command; returns the CSV's path."""
    detector = load_method(
        checkpoint,
        {"CounterfeitDetection": CounterfeitDetection},
        "detect score takes the detector.pt that `counterfeit detect fit` writes.",
    ).to(resolve_device(device))
    assert isinstance(detector, CounterfeitDetection)
    channels, size = detector.net.shape[0], detector.net.shape[-1]
    files, batch = read_image_batch(images, size, channels, skip_unreadable)
    scores = fake_probability(detector.net, batch)
    threshold = float(detector.threshold)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "scores.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "p_fake", "flagged"])
        for file, score in zip(files, scores.tolist()):
            writer.writerow([str(file), f"{score:.6g}", int(score > threshold)])
    flagged = int((scores > threshold).sum())
    print(f"scored {len(files)} images: {flagged} read as generated (P(fake) > {threshold:.4g})")
    print(f"wrote {csv_path}")
    return csv_path
