"""Reading images (and labels) from every data form the robustness tools accept.

An :class:`gan.data.ImageTensors`, an ``(images, labels)`` pair of tensors, an
image tensor, or an iterable of batches (a DataLoader).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError

Data = (
    ImageTensors | tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]]
)


def labelled_batches(
    data: Data, batch_size: int, limit: int | None, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches from any of the accepted data forms, at most ``limit`` images.

    An ImageTensors is read in a random order fixed by ``seed`` (``limit`` then draws
    a random subset: datasets are often sorted by class); a pair of tensors in order,
    ``batch_size`` at a time; an iterable of batches as it comes.

    Raises:
        ConfigError: a ``limit`` below 1.
        DataError: unlabelled images, or batches that are not (images, labels).
    """
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"max_examples must be >= 1, got {limit!r}.")
    if isinstance(data, ImageTensors):
        if not data.has_labels or bool((data.labels < 0).any()):
            raise DataError(
                f"{data.name} has unlabeled images: robustness evaluation needs labels."
            )
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        for indices in order[:limit].split(batch_size):
            yield data.get_batch(indices)
        return
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        images, labels = data
        if not isinstance(labels, torch.Tensor) or labels.shape[:1] != images.shape[:1]:
            raise DataError("data must be (images, labels) with one label per image.")
        total = len(images) if limit is None else min(limit, len(images))
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            yield images[start:stop], labels[start:stop]
        return
    seen = 0
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise DataError(f"each batch must be (images, labels); got {type(batch).__name__}.")
        x, y = batch[0], batch[1]
        if limit is not None:
            x, y = x[: limit - seen], y[: limit - seen]
        seen += len(x)
        yield x, y
        if limit is not None and seen >= limit:
            return


def as_pair(data: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(images, labels or None) for in-memory data, in its order; None for an iterable of batches.

    An ImageTensors whose labels are all unknown (negative) gives None labels.
    """
    if hasattr(data, "get_batch") and hasattr(data, "labels"):
        x, y = data.get_batch(torch.arange(len(data)))
        return x, (y if bool((y >= 0).any()) else None)
    if isinstance(data, torch.Tensor):
        return data, None
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and isinstance(data[0], torch.Tensor)
        and (data[1] is None or isinstance(data[1], torch.Tensor))
    ):
        return data[0], data[1]
    return None


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels or None) of one batch: an image tensor or an (images, labels, ...) tuple."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], labels
    raise DataError(
        f"data batches must be images or (images, labels) tensors, got {type(batch).__name__}."
    )


def drop_class(
    x: torch.Tensor, y: torch.Tensor | None, exclude: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images (and labels) whose label is not ``exclude``; all of them without labels."""
    if y is None:
        return x, y
    keep = y.cpu() != exclude
    return x[keep], y[keep]
