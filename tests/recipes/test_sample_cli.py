"""``counterfeit sample``: a grid from a trained generator, of the class asked for."""

import json

import pytest
import torch
from PIL import Image

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.data.captions import render_captioned_digits
from counterfeit.gan.data.vocabulary import CaptionTokens, Vocabulary
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.models import DCGAN, BigGAN, ProGAN, TextToImageGAN
from counterfeit.recipes.sample import run_sample
from tests.cli_process import run_cli


def trained(method, tmp_path, name):
    """``method`` after two steps on random labelled 32 px images, checkpointed."""
    pixels = torch.randint(0, 256, (32, 1, 32, 32), dtype=torch.uint8)
    data = InfiniteLoader(ImageTensors(pixels, torch.arange(32) % 10, "noise"), 8, seed=0)
    path = tmp_path / f"{name}.ckpt"
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(method, data, config, checkpoint_path=path).fit()
    return path


def test_sample_draws_the_class_asked_for_and_refuses_what_does_not_apply(tmp_path):
    torch.manual_seed(0)
    biggan = trained(BigGAN(32, 1, latent_dim=16, width=2, shared_dim=8), tmp_path, "biggan")
    out = tmp_path / "sevens.png"
    result = run_cli(
        "sample", "--checkpoint", str(biggan), "--class", "7", "--n", "9",
        "--truncation", "0.7", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (3 * 34 + 2, 3 * 34 + 2)  # 3 x 3 grid of 32 px, padding 2
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["class"] == 7 and record["truncation"] == 0.7 and record["method"] == "BigGAN"

    dcgan = trained(DCGAN(32, 1, latent_dim=8, width=4), tmp_path, "dcgan")
    result = run_cli("sample", "--checkpoint", str(dcgan), "--truncation", "0.5", "--out", str(out))
    assert result.returncode == 2 and "--truncation is BigGAN's" in result.stderr
    result = run_cli("sample", "--checkpoint", str(dcgan), "--class", "3", "--out", str(out))
    assert result.returncode == 2 and "class-conditional" in result.stderr


def test_sample_draws_a_progan_at_its_full_size_in_the_middle_of_its_growth(tmp_path):
    torch.manual_seed(0)
    growing = ProGAN(32, 1, 8, 16, 4, fade_images=8, stable_images=8)
    checkpoint = trained(growing, tmp_path, "progan")  # 16 images: the 8 px fade-in begins
    out = tmp_path / "grown.png"
    result = run_cli("sample", "--checkpoint", str(checkpoint), "--n", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (2 * 34 + 2, 2 * 34 + 2)  # 2 x 2 grid of 32 px
    assert json.loads(out.with_suffix(".json").read_text())["method"] == "ProGAN"


def test_sample_draws_a_caption_and_refuses_unknown_words_and_a_missing_text(tmp_path):
    captioned = render_captioned_digits(16, size=16, seed=0, captions_per_image=2)
    vocabulary = Vocabulary.from_captions([c for row in captioned.captions for c in row])
    gan = TextToImageGAN(vocabulary.words, ["a red 7"], 16, 3, text_dim=8, compressed=4, width=4)
    data = InfiniteLoader(CaptionTokens(captioned, vocabulary, 24), 8, seed=0)
    checkpoint = tmp_path / "text2image.ckpt"
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(gan, data, config, checkpoint_path=checkpoint).fit()
    grid = tmp_path / "blue3.png"
    result = run_cli("sample", "--checkpoint", str(checkpoint), "--text", "a blue 3", "--n", "4",
                     "--out", str(grid))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(grid).size == (2 * 18 + 2, 2 * 18 + 2)  # 2 x 2 grid of 16 px, padding 2
    assert json.loads(grid.with_suffix(".json").read_text())["text"] == "a blue 3"
    with pytest.raises(ConfigError, match="no word of the caption 'zebra'"):
        run_sample(checkpoint, grid, text="zebra")
    with pytest.raises(ConfigError, match="give --text"):
        run_sample(checkpoint, grid)
