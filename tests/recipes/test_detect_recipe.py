"""The ``detect`` task end to end on tiny settings: a generator trained from its recipe and
one read from a checkpoint, the generalisation matrix, degradations, the robustness report."""

import json

import pytest
import torch

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.data.paired import edges2digits
from counterfeit.gan.errors import CheckpointError, ConfigError
from counterfeit.gan.models import DCGAN, Pix2Pix
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.sample import translate_with_checkpoint

pytestmark = pytest.mark.slow

TINY_GAN = "[train.steps=4, train.batch_size=16, model.width=4, train.eval_every=null, evaluation.samples_every=null, evaluation.n_samples=40, evaluation.n_real=40, evaluation.kid_subset_size=20]"


def tiny(tmp_path, generators: str, *extra: str) -> list[str]:
    return [
        f"generators={generators}",
        "detectors.kinds=[cnn, spectrum]",
        "train.steps=8",
        "train.batch_size=16",
        "train.progress=false",
        "train.checkpoint_every=8",
        "evaluation={n_train: 64, n_validation: 16, n_test: 32, jpeg: [50], resize: [0.5], "
        "blur: [1.0], attacks: [fgsm], eps: [0.03]}",
        "tracking.enabled=false",
        *extra,
    ]


def noise_dcgan(tmp_path) -> str:
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (32, 1, 32, 32), dtype=torch.uint8)
    data = InfiniteLoader(ImageTensors(pixels, None, "noise"), 8, seed=0)
    path = tmp_path / "noise.ckpt"
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(DCGAN(32, 1, latent_dim=8, width=4), data, config, checkpoint_path=path).fit()
    return str(path)


def test_detect_recipe_builds_the_matrix_from_a_recipe_and_a_checkpoint(tmp_path):
    generators = (
        f"[{{name: dcgan, recipe: mnist-dcgan, settings: {TINY_GAN}}}, "
        f"{{name: noise, checkpoint: {noise_dcgan(tmp_path)}}}]"
    )
    out = tmp_path / "run"
    summary = run_recipe(load_recipe("digits-detect", tiny(tmp_path, generators)), out=out)
    for kind in ("cnn", "spectrum"):
        matrix = summary[f"{kind}_matrix"]
        assert set(matrix) == {"dcgan", "noise"} and set(matrix["dcgan"]) == {"dcgan", "noise"}
        cell = matrix["noise"]["noise"]
        assert 0 <= cell["auroc"] <= 1 and cell["accuracy"] == pytest.approx(
            (cell["real_accuracy"] + cell["fake_accuracy"]) / 2
        )
        assert set(summary[f"{kind}_degraded"]) == {"clean", "jpeg_50", "resize_0.5", "blur_1"}
        assert summary["metrics"][f"{kind}/dcgan/noise/auroc"] == matrix["dcgan"]["noise"]["auroc"]
        assert (out / f"robustness-{kind}").is_dir()
        report = (out / f"robustness-{kind}" / "report.md").read_text()
        assert f"# Robustness of {kind} detector on real and fake test images" in report
        assert (out / "plots" / f"{kind}_generalisation.png").exists()
    # detectors of pure noise tell it from real digits
    assert summary["cnn_matrix"]["noise"]["noise"]["auroc"] > 0.9
    assert "| trained on | dcgan | noise |" in (out / "detect.md").read_text()
    assert json.loads((out / "generators" / "dcgan" / "summary.json").read_text())["steps"] == 4
    # a resumed run reuses the generator it trained
    stamp = (out / "generators" / "dcgan" / "summary.json").stat().st_mtime
    run_recipe(load_recipe("digits-detect", tiny(tmp_path, generators)), out=out, resume=True)
    assert (out / "generators" / "dcgan" / "summary.json").stat().st_mtime == stamp


def test_detect_recipe_errors_name_the_generator(tmp_path):
    with pytest.raises(ConfigError, match="generator 'x' needs one of recipe or checkpoint"):
        load_recipe("digits-detect", ["generators=[{name: x}]"])
    twice = "[{name: a, recipe: mnist-dcgan}, {name: a, recipe: mnist-dcgan}]"
    with pytest.raises(ConfigError, match="distinct names"):
        run_recipe(load_recipe("digits-detect", tiny(tmp_path, twice)), out=tmp_path / "x")


def edges_pix2pix(tmp_path) -> str:
    """A tiny Pix2Pix after two steps on Canny edges -> digits (32 px), checkpointed."""
    torch.manual_seed(0)
    data = InfiniteLoader(edges2digits("train"), 8, seed=0)
    path = tmp_path / "pix2pix.ckpt"
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(Pix2Pix(32, 1, 1, g_width=4, d_width=4), data, config, checkpoint_path=path).fit()
    return str(path)


def test_a_translating_generator_counterfeits_the_real_images_of_each_split(tmp_path):
    checkpoint = edges_pix2pix(tmp_path)
    real = edges2digits("test").get_batch(torch.arange(6))[1]
    first, again = translate_with_checkpoint(checkpoint, [real, real], "canny")
    assert first.shape == real.shape and torch.equal(first, again)  # eval mode: deterministic
    other = translate_with_checkpoint(checkpoint, [real.flip(-1)], "canny")[0]
    assert not torch.allclose(first, other)  # the fakes follow the real image's edges
    with pytest.raises(CheckpointError, match="a translating fake source is a Pix2Pix checkpoint"):
        translate_with_checkpoint(noise_dcgan(tmp_path), [real], "canny")
    generators = f"[{{name: p2p, checkpoint: {checkpoint}, translates: canny}}]"
    summary = run_recipe(load_recipe("digits-detect", tiny(tmp_path, generators)), tmp_path / "run")
    assert set(summary["cnn_matrix"]) == {"p2p"}
    assert 0 <= summary["cnn_matrix"]["p2p"]["p2p"]["auroc"] <= 1
