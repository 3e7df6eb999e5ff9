"""Endless, resumable batch streams.

The Trainer counts steps, not epochs, and must resume mid-epoch to exactly the
batch it would have drawn next. :class:`InfiniteLoader` draws each epoch's
order from :class:`torch.utils.data.DistributedSampler` seeded by
``(seed, epoch)`` (so under ``torchrun`` each rank gets its own shard) and
keeps ``(epoch, position)`` as its whole state. :class:`ZipLoader` draws from
several loaders at once (source and target for adaptation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torch.utils.data.dataloader import default_collate

from counterfeit.gan.errors import ConfigError, DataError

BatchTransform = Callable[[Any, torch.Generator], Any]


class InfiniteLoader:
    """Batches forever from ``dataset``, reshuffled every epoch, resumable.

    Args:
        dataset: any map-style dataset; datasets with ``get_batch(indices)``
            (such as :class:`gan.data.ImageTensors`) are indexed a batch at a time.
        batch_size: images per batch on this rank.
        seed: the shuffle seed; epoch ``e`` uses the permutation of ``seed + e``.
        shuffle: reshuffle every epoch (otherwise dataset order).
        drop_last: drop the final short batch of an epoch.
        rank, world_size: this process's shard (defaults: one process).
        num_workers: worker processes for datasets without ``get_batch``.
        transform: optional ``f(batch, generator) -> batch`` (e.g. augmentation),
            given a generator seeded from ``(seed, epoch, position)`` so that a
            resumed run augments exactly as an uninterrupted one.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        transform: BatchTransform | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
        size = len(dataset)  # type: ignore[arg-type]
        if size == 0:
            raise DataError(f"{_name(dataset)} is empty: there is nothing to train on.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.transform = transform
        self.sampler = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )
        per_rank = len(self.sampler)
        if drop_last and per_rank < batch_size:
            raise DataError(
                f"{_name(dataset)} has {size} images ({per_rank} per process), fewer than one "
                f"batch of {batch_size}; lower the batch size or add data."
            )
        self.epoch = 0
        self.position = 0
        self._batches: list[torch.Tensor] | None = None
        self._worker_iter: Iterator | None = None

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self) -> Any:
        if self._batches is None or self.position >= len(self._batches):
            if self._batches is not None:
                self.epoch += 1
                self.position = 0
            self._start_epoch()
        assert self._batches is not None
        indices = self._batches[self.position]
        if self._worker_iter is not None:
            batch = next(self._worker_iter)
        elif hasattr(self.dataset, "get_batch"):
            batch = self.dataset.get_batch(indices)
        else:
            batch = default_collate([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + self.epoch) * 1_000_033 + self.position
            )
            batch = self.transform(batch, generator)
        self.position += 1
        return batch

    def _start_epoch(self) -> None:
        self.sampler.set_epoch(self.epoch)
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.int64)
        batches = list(order.split(self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        self._batches = batches
        self._worker_iter = None
        if self.num_workers > 0 and not hasattr(self.dataset, "get_batch"):
            remaining = [b.tolist() for b in batches[self.position :]]
            self._worker_iter = iter(
                DataLoader(self.dataset, batch_sampler=remaining, num_workers=self.num_workers)
            )

    def state_dict(self) -> dict[str, int]:
        """Where the stream stands: the next batch is ``position`` of ``epoch``."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ConfigError(
                f"cannot resume: the checkpoint's data seed is {state['seed']} but this run "
                f"uses {self.seed}; resume with the same seed."
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._batches = None
        if self.position > 0:
            self._start_epoch()


class ZipLoader:
    """Draws one batch from each of several :class:`InfiniteLoader` per step.

    Yields a tuple in the order given. The first loader defines the epoch.
    """

    def __init__(self, *loaders: InfiniteLoader) -> None:
        if not loaders:
            raise ConfigError("ZipLoader needs at least one loader.")
        self.loaders = loaders

    def __len__(self) -> int:
        return len(self.loaders[0])

    @property
    def epoch(self) -> int:
        return self.loaders[0].epoch

    def __iter__(self) -> ZipLoader:
        return self

    def __next__(self) -> tuple:
        return tuple(next(loader) for loader in self.loaders)

    def state_dict(self) -> dict[str, Any]:
        return {"loaders": [loader.state_dict() for loader in self.loaders]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state["loaders"]
        if len(states) != len(self.loaders):
            raise ConfigError(
                f"cannot resume: the checkpoint has {len(states)} data streams, this run has "
                f"{len(self.loaders)}."
            )
        for loader, loader_state in zip(self.loaders, states):
            loader.load_state_dict(loader_state)


def _name(dataset: Dataset) -> str:
    return getattr(dataset, "name", type(dataset).__name__)
