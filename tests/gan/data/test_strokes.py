"""Handwriting-like stroke digits (gan.data.strokes): the spline, the writers, the renderer."""

import numpy as np
import pytest
import torch

from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.gan.data import DigitStyle, DomainSpec, ImageTensors, build_domain, render_digits
from counterfeit.gan.data.strokes import (
    SKELETONS,
    Hand,
    _catmull_rom,
    class_moments,
    hands,
    shape_moments,
    stroke_mask,
)
from counterfeit.recipes.tasks.cyclegan import ClassifierConfig, train_classifier


@pytest.mark.parametrize("closed", [False, True])
def test_catmull_rom_passes_through_every_control_point(closed):
    points = np.array([[0.1, 0.2], [0.5, 0.0], [0.9, 0.4], [0.6, 0.9], [0.2, 0.7]])
    samples = 12
    curve = _catmull_rom(points, closed=closed, samples=samples)
    assert np.allclose(curve[::samples][: len(points)], points)
    assert np.allclose(curve[-1], points[0] if closed else points[-1])
    # smooth: no step between consecutive samples is longer than a tenth of the box
    assert np.linalg.norm(np.diff(curve, axis=0), axis=1).max() < 0.1


def test_every_digit_has_skeletons_inside_the_unit_box():
    assert sorted(SKELETONS) == list(range(10))
    for digit, options in SKELETONS.items():
        assert options, digit
        for skeleton in options:
            for kind, points in skeleton:
                assert kind in {"curve", "line", "loop"}
                assert len(points) >= 2 and np.all(
                    (np.array(points) >= 0) & (np.array(points) <= 1)
                )


def test_writers_are_reproducible_and_differ_from_each_other():
    assert hands(5, seed=3) == hands(5, seed=3)
    assert len(set(hands(28))) == 28
    hand = hands(1)[0]
    a = stroke_mask(4, hand, 96, np.random.default_rng(0))
    b = stroke_mask(4, hand, 96, np.random.default_rng(0))
    c = stroke_mask(4, hand, 96, np.random.default_rng(1))
    assert a.shape == (96, 96) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_thicker_pen_covers_more_of_the_canvas():
    thin = Hand(choices=(0,) * 10, slant=0.0, width=0.7, pen=0.05, jitter=0.0)
    thick = Hand(choices=(0,) * 10, slant=0.0, width=0.7, pen=0.15, jitter=0.0)
    for digit in range(10):
        rng = np.random.default_rng(digit)
        assert (
            stroke_mask(digit, thick, 96, rng).sum() > 1.5 * stroke_mask(digit, thin, 96, rng).sum()
        )


def test_stroke_style_renders_balanced_reproducible_images():
    style = DigitStyle(fonts=("strokes",), colour=False)
    a, b = render_digits(30, seed=2, style=style), render_digits(30, seed=2, style=style)
    assert torch.equal(a.images, b.images)
    assert torch.bincount(a.labels, minlength=10).tolist() == [3] * 10


def test_a_classifier_of_real_handwriting_reads_strokes_better_than_fonts():
    """The renderer's purpose: a classifier trained on real handwritten digits (the embedded
    MNIST sample) reads the stroke digits better than the font digits."""
    torch.manual_seed(0)
    real = build_domain(DomainSpec(name="mnist-small"), "train", 28)
    judge = train_classifier(real, 10, ClassifierConfig(steps=300, augment="none"), seed=0)
    read = {}
    for fonts in [("ttf", "pil", "hershey"), ("strokes",)]:
        style = DigitStyle(fonts=fonts, colour=False, backgrounds=("flat",))
        digits = build_domain(
            DomainSpec(name="synthetic-digits", n=10, n_test=500, style=style), "test", 28
        )
        read[fonts[-1]] = accuracy(predict(judge, digits, 250))
    assert read["strokes"] > read["hershey"] + 0.05, read


def test_shape_moments_of_a_leaning_bar_and_a_wide_box():
    image = np.zeros((3, 28, 28))
    for row in range(4, 24):  # a bar whose top leans right by 0.25 px per row
        image[0, row, 14 + round((14 - row) * 0.25)] = 1.0
    image[1, 10:18, 4:24] = 1.0  # wider than tall
    image[2, 4:24, 10:18] = 1.0  # taller than wide
    slant, aspect = shape_moments(image)
    assert slant[0] == pytest.approx(0.25, abs=0.03)
    assert abs(slant[1]) < 1e-9 and aspect[1] > 2 > 0.5 > aspect[2]
    with pytest.raises(ValueError, match="N x H x W"):
        shape_moments(image[0])
    as_uint8 = torch.from_numpy(image * 255).to(torch.uint8)[:, None]
    per_class = class_moments(ImageTensors(as_uint8, torch.tensor([0, 1, 2]), "bars"))
    assert np.allclose(per_class, np.stack([slant, aspect], axis=1), atol=1e-6)
    with pytest.raises(ValueError, match=r"bars has no images of class \[1\]"):
        class_moments(ImageTensors(as_uint8, torch.tensor([0, 2, 2]), "bars"))


def test_stroke_digits_lean_and_spread_like_real_mnist_digits():
    """DIGIT_WIDTH and DIGIT_SLANT were fitted to full MNIST's per-class moments; the embedded
    MNIST sample, which the fit never saw, agrees with the rendered strokes to within a few
    hundredths: mean errors 0.031 in slant and 0.013 in aspect (before the fit 0.084 and 0.17)."""
    real = class_moments(build_domain(DomainSpec(name="mnist-small"), "train", 28))
    clean = DigitStyle(
        colour=False,
        fonts=("strokes",),
        scale=(0.68, 0.74),
        backgrounds=("flat",),
        blur=(0.0, 0.0),
        noise=(0.0, 0.0),
        min_contrast=1.0,
    )
    spec = DomainSpec(name="synthetic-digits", n=10, n_test=500, style=clean)
    rendered = class_moments(build_domain(spec, "test", 28))
    error = np.abs(rendered - real)
    assert error[:, 0].mean() < 0.055, error[:, 0]
    assert np.delete(error[:, 1], 1).mean() < 0.06, error[:, 1]  # the 1's width is hand-set
