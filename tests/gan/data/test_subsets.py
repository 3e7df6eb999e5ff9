"""Every subset of a split is a seeded random sample with the split's class histogram.

The embedded ``mnistm-style`` test split is sorted by class (its first 100 images are
zeros), so a subset made of the first N images shows the first classes only.
"""

from __future__ import annotations

import pytest
import torch

from counterfeit.adapt.evaluate import AdaptationReport, Predictions, domain_separability
from counterfeit.gan.data import DomainSpec, ImageTensors, build_domain
from counterfeit.gan.data.tensors import sample_indices
from counterfeit.recipes.tasks.common.adaptation import (
    data_mean,
    domain_examples,
    embedding_panels,
)

CLASSES = 10


@pytest.fixture(scope="module")
def sorted_split():
    split = build_domain(DomainSpec(name="mnistm-style"), "test", 28)
    assert torch.equal(split.labels, split.labels.sort().values)  # what makes [:n] wrong
    return split


def _frequencies(labels: torch.Tensor) -> torch.Tensor:
    return torch.bincount(labels, minlength=CLASSES).float() / len(labels)


def _histogram_gap(subset: torch.Tensor, split: torch.Tensor) -> float:
    """Largest difference between a class's frequency in the subset and in the split."""
    return float((_frequencies(subset) - _frequencies(split)).abs().max())


@pytest.mark.parametrize("n", [300, 500])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_sample_of_a_sorted_split_has_its_class_histogram(sorted_split, n, seed):
    subset = sorted_split.take(n, seed)
    assert len(subset) == n
    assert _histogram_gap(subset.labels, sorted_split.labels) < 0.05
    assert torch.equal(sample_indices(len(sorted_split), n, seed), sample_indices(1000, n, seed))


def test_the_domains_plot_shows_many_classes(sorted_split):
    images, labels = domain_examples(sorted_split, 10, seed=0)
    assert images.shape == (10, 3, 28, 28)
    assert len(set(labels.tolist())) >= 6  # the first ten are all zeros


def test_the_embedding_plots_a_sample_with_the_split_histogram(sorted_split):
    labels = sorted_split.labels
    features = torch.randn(len(labels), 4)
    report = AdaptationReport(
        Predictions(torch.zeros(len(labels), CLASSES), labels, features),
        Predictions(torch.zeros(len(labels), CLASSES), labels, features),
        {},
        [],
    )
    panels = embedding_panels({"dann": report, "source-only": report}, 300, seed=0)
    source_features, source_labels, _, target_labels = panels["dann"]
    assert len(target_labels) == 300
    assert _histogram_gap(torch.as_tensor(target_labels), labels) < 0.05
    assert _histogram_gap(torch.as_tensor(source_labels), labels) < 0.05
    picked = torch.as_tensor(source_features)
    assert torch.equal(picked, features[sample_indices(len(labels), 300, 0)])  # features follow
    assert (panels["source-only"][1] == source_labels).all()  # the same images for every method


def test_domain_separability_balances_the_larger_side_with_a_random_sample():
    """The source's first half looks like the target, its second half does not: the larger
    side's first rows would hide the difference."""
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(400, 2, generator=generator)
    alike = torch.randn(400, 2, generator=generator)
    apart = torch.randn(400, 2, generator=generator) + torch.tensor([6.0, 0.0])
    scores = domain_separability(torch.cat([alike, apart]), target, seed=0)
    assert scores["domain_accuracy"] > 0.65  # about 0.75: half of the source is separable


def test_the_input_mean_of_a_sorted_set_is_taken_over_all_its_classes():
    """A class-sorted set larger than the sample: 6,000 black images, then 6,000 white."""
    images = torch.zeros(12_000, 3, 2, 2, dtype=torch.uint8)
    images[6_000:] = 255
    labels = (torch.arange(12_000) >= 6_000).long()
    mean = data_mean(ImageTensors(images, labels, "sorted"), limit=5_000)
    assert mean == pytest.approx([0.5] * 3, abs=0.03)  # the first 5,000 alone: 0.0
