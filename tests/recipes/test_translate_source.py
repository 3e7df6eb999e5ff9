"""A PixelDA checkpoint remembers its source domain; ``translate`` renders that domain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from counterfeit.gan.data import DomainSpec, build_domain
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.tasks.common.adaptation import translate_dataset
from counterfeit.recipes.translate import load_translator, run_translate

TINY_PIXELDA = [
    "device=cpu",
    "data.source.n=32",
    "data.source.n_test=16",
    "data.target.name=sklearn-digits",
    "data.target.n=32",
    "data.target.n_test=16",
    "model.generator_filters=4",
    "model.generator_blocks=1",
    "model.discriminator_filters=4",
    "train.steps=2",
    "train.batch_size=4",
    "train.checkpoint_every=2",
    "train.progress=false",
    "samples_every=2",
    "baselines.methods=[]",
    "tracking.enabled=false",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """digits-pixelda (pen-stroke synthetic digits as the source), trained for two steps."""
    out = tmp_path_factory.mktemp("pixelda")
    run_recipe(load_recipe("digits-pixelda", TINY_PIXELDA), out=out)
    return out / "checkpoints" / "pixelda.ckpt"


def _translated(out) -> np.ndarray:
    return np.load(out / "adapted.npz")["x_test"]


def _expected(checkpoint, spec: DomainSpec, limit: int) -> np.ndarray:
    """What translating ``limit`` images of ``spec``'s test split with seed 0 gives."""
    model = load_translator(checkpoint)
    images = build_domain(spec, "test", 28, 3).take(limit)
    adapted = translate_dataset(model, images, seed=0)
    return adapted.images.permute(0, 2, 3, 1).numpy()


def test_translate_renders_the_source_the_generator_was_trained_on(checkpoint, tmp_path, capsys):
    trained = load_translator(checkpoint).hparams["source_spec"]
    assert trained["name"] == "synthetic-digits" and trained["style"]["fonts"] == ["strokes"]

    out = tmp_path / "same"
    run_translate(str(checkpoint), "synthetic-digits", str(out), split="test", limit=8, fmt="npz")
    printed = capsys.readouterr()
    assert "the settings the generator was trained on" in printed.out
    assert "'fonts': ['strokes']" in printed.out and "warning" not in printed.err
    pen = DomainSpec.model_validate({**trained, "n_test": 8})
    assert np.array_equal(_translated(out), _expected(checkpoint, pen, 8))
    glyphs = DomainSpec(name="synthetic-digits")  # what --data names, alone
    assert not np.array_equal(_translated(out), _expected(checkpoint, glyphs, 8))
    record = json.loads((out / "translate.json").read_text())
    assert record["trained_source"]["style"]["fonts"] == ["strokes"]


def test_translate_warns_when_the_data_differs_from_the_trained_source(
    checkpoint, tmp_path, capsys
):
    out = tmp_path / "other"
    run_translate(str(checkpoint), "sklearn-digits", str(out), split="test", limit=4, fmt="npz")
    warning = capsys.readouterr().err
    assert "warning: this generator was trained on 'synthetic-digits'" in warning
    assert "'sklearn-digits' differs" in warning and "--data synthetic-digits" in warning
    assert _translated(out).shape == (4, 28, 28, 3)


def test_a_checkpoint_without_a_source_spec_translates_as_named(tmp_path, capsys):
    """Checkpoints of methods that record no source (CycleGAN, older PixelDA) are unchanged."""
    from counterfeit.adapt.pixelda import PixelDA
    from counterfeit.gan.checkpoint import FORMAT, save_atomic

    torch.manual_seed(0)
    model = PixelDA((3, 28, 28), (3, 28, 28), generator_filters=4, generator_blocks=1)
    path = tmp_path / "p.ckpt"
    save_atomic(
        {
            "format": FORMAT,
            "method_class": "PixelDA",
            "method_init": model.init_args(),
            "method": model.state_dict(),
        },
        path,
    )
    out = tmp_path / "plain"
    run_translate(str(path), "synthetic-digits", str(out), split="test", limit=4, fmt="npz")
    assert "warning" not in capsys.readouterr().err
    glyphs = DomainSpec(name="synthetic-digits")
    assert np.array_equal(_translated(out), _expected(path, glyphs, 4))
