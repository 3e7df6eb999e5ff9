"""Handwriting-like stroke digits (gan.data.strokes): the spline, the writers, the renderer."""

import numpy as np
import pytest
import torch

from adapt.evaluate import accuracy, predict
from gan.data import DigitStyle, DomainSpec, build_domain, render_digits
from gan.data.strokes import SKELETONS, Hand, _catmull_rom, hands, stroke_mask
from recipes.tasks.cyclegan import ClassifierConfig, train_classifier


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
    judge = train_classifier(real, 10, ClassifierConfig(steps=300), seed=0)
    read = {}
    for fonts in [("ttf", "pil", "hershey"), ("strokes",)]:
        style = DigitStyle(fonts=fonts, colour=False, backgrounds=("flat",))
        digits = build_domain(
            DomainSpec(name="synthetic-digits", n=10, n_test=500, style=style), "test", 28
        )
        read[fonts[-1]] = accuracy(predict(judge, digits, 250))
    assert read["strokes"] > read["hershey"] + 0.05, read
