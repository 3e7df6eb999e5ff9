"""``digits-text2image`` end to end on tiny settings, and on a user's caption folder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from counterfeit.gan.data.captions import ATTRIBUTES
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.recipes import load_recipe, run_recipe

pytestmark = pytest.mark.slow

TINY = [
    "data.n=160",
    "data.n_test=40",
    "data.image_size=16",
    "data.captions_per_image=2",
    "text_encoder.steps=20",
    "text_encoder.batch_size=16",
    "text_encoder.embed_dim=16",
    "text_encoder.hidden=16",
    "model.width=8",
    "train.steps=6",
    "train.batch_size=16",
    "train.log_every=3",
    "train.checkpoint_every=3",
    "train.progress=false",
    "evaluation.reader_steps=10",
    "evaluation.reader_images=100",
    "evaluation.n_zero_shot=20",
    "evaluation.r_candidates=10",
    "evaluation.samples_every=3",
    "tracking.enabled=false",
]


def test_the_recipe_reports_every_attribute_for_held_out_and_zero_shot_captions(tmp_path):
    out = tmp_path / "run"
    summary = run_recipe(load_recipe("digits-text2image", TINY), out)
    metrics = summary["metrics"]
    for prefix in ("", "real/", "zero-shot/"):
        for name in [*ATTRIBUTES, "all"]:
            assert 0 <= metrics[f"{prefix}attribute_accuracy/{name}"] <= 1
    assert 0 <= metrics["r_precision"] <= 1 and metrics["fid-digits"] > 0
    assert 0 <= metrics["digits_classifier_accuracy"] <= 1
    # the reader reads rendered digits better than the chance of its hardest attribute
    assert metrics["real/attribute_accuracy/colour"] > 1 / 6
    for plot in ("caption_rows", "held_out_captions", "zero_shot", "interpolation"):
        assert Image.open(out / "plots" / f"{plot}.png").size[0] > 16
    assert "interpolation.png, from" in (out / "plots" / "captions.txt").read_text()
    assert summary["train"]["text-encoder"]["steps"] == 20


def test_a_folder_of_pairs_trains_and_bad_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.path"):
        load_recipe("digits-text2image", ["data.source=folder"])
    root = tmp_path / "pairs"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        colour = ("red", "blue")[i % 2]
        pixel = (220, 30, 30) if colour == "red" else (30, 30, 220)
        image = np.tile(np.array(pixel, np.uint8), (16, 16, 1)) + rng.integers(0, 20, (16, 16, 3))
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{i}.png")
        lines.append(f"{i}.png\ta {colour} square")
    (root / "captions.txt").write_text("\n".join(lines))
    settings = [*TINY, "data.source=folder", f"data.path={root}", "data.test_fraction=0.25"]
    summary = run_recipe(load_recipe("digits-text2image", settings), tmp_path / "run")
    assert "r_precision" in summary["metrics"]
    assert not any(k.startswith("attribute_accuracy") for k in summary["metrics"])
    (root / "captions.txt").write_text("")
    with pytest.raises(DataError, match="holds no captions"):
        run_recipe(load_recipe("digits-text2image", settings), tmp_path / "run2")
