"""``counterfeit detect fit`` and ``score``: a detector of one's own fakes, from a GAN
checkpoint and a folder, and the probability it gives new images."""

import csv
import json

import torch
from PIL import Image

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.data.embedded import mnist_small
from counterfeit.gan.models import DCGAN
from counterfeit.robust.counterfeits import degrade
from tests.cli_process import run_cli


def write_pngs(images: torch.Tensor, folder) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        pixels = image[0].mul(255).round().to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def test_fit_on_a_checkpoint_and_a_folder_then_score_new_images(tmp_path):
    torch.manual_seed(0)
    noise = ImageTensors(torch.randint(0, 256, (32, 1, 32, 32), dtype=torch.uint8), None, "noise")
    checkpoint = tmp_path / "dcgan.ckpt"
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(DCGAN(32, 1, latent_dim=8, width=4), InfiniteLoader(noise, 8, seed=0), config,
            checkpoint_path=checkpoint).fit()  # fmt: skip
    digits = mnist_small("test").take(300, seed=0).as_floats()[0]
    write_pngs(degrade(digits[:200], "blur", 1.5), tmp_path / "blurred")
    out = tmp_path / "detector"
    result = run_cli(
        "detect", "fit", "--real", "mnist-small", "--fake", str(checkpoint),
        "--fake", str(tmp_path / "blurred"), "--steps", "80", "--n-fake", "200",
        "--augment", "0", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "fit.json").read_text())
    assert set(record["validation"]) == {str(checkpoint), str(tmp_path / "blurred")}
    assert record["validation"][str(tmp_path / "blurred")]["auroc"] > 0.85
    # new images: unseen blurred digits should read as fake more often than unseen real ones
    write_pngs(degrade(digits[200:], "blur", 1.5), tmp_path / "new" / "fake")
    write_pngs(digits[200:], tmp_path / "new" / "real")
    result = run_cli(
        "detect", "score", "--checkpoint", str(out / "detector.pt"), str(tmp_path / "new"),
        "--out", str(tmp_path / "scores"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (tmp_path / "scores" / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    flagged = {
        side: [int(r["flagged"]) for r in rows if f"/{side}/" in r["path"]]
        for side in ("fake", "real")
    }
    assert sum(flagged["fake"]) > sum(flagged["real"]) + 40, flagged
    result = run_cli(
        "detect", "fit", "--real", "mnist-small", "--fake", str(checkpoint), "--out", str(out)
    )
    assert result.returncode == 2 and "--overwrite" in result.stderr
