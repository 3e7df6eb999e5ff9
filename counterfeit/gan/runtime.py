"""Devices, modes, seeds and the distributed (torchrun) environment.

One place decides where tensors live: ``resolve_device("auto")`` picks CUDA when
present; :func:`model_mode` runs a block in train or eval mode and restores every
module's flag; :func:`distributed_context` reads the variables ``torchrun`` sets and
joins the process group (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from counterfeit.gan.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")

Method = TypeVar("Method", bound=Callable[..., torch.Tensor])


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters live (CPU for a module without parameters)."""
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@contextlib.contextmanager
def model_mode(model: nn.Module, training: bool) -> Iterator[bool]:
    """Run a block with ``model`` in train or eval mode, restoring every submodule's flag after.

    ``model.train(training)`` is called (so modules that pin their own mode, such as an
    :class:`gan.EMA` copy, keep it) unless every submodule is already in that mode; on
    exit each submodule gets back the flag it had. A callable that is not an
    ``nn.Module`` is left alone.

    Yields False when the mode cannot be switched: a raw ``torch.export`` program
    refuses ``train()`` and keeps the mode it was exported in.
    """
    saved = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
    switchable = True
    if any(flag != training for _, flag in saved):
        try:
            model.train(training)
        except NotImplementedError:
            switchable = False
    try:
        yield switchable
    finally:
        for module, flag in saved:
            module.training = flag


def follows_input_device(method: Method) -> Method:
    """Decorate a module's inference method so that it serves tensors on any device.

    Tensor arguments move to the module's device, and the result comes back on the
    first argument's device: a model trained on CUDA translates CPU images without a
    device-mismatch error from deep inside a convolution.
    """

    @functools.wraps(method)
    def wrapper(self: nn.Module, x: torch.Tensor, *args, **kwargs):
        device = module_device(self)
        args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
        kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        return method(self, x.to(device), *args, **kwargs).to(x.device)

    return wrapper  # type: ignore[return-value]


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda[:N]`` into a :class:`torch.device`.

    Raises:
        ConfigError: for an unknown name, or ``cuda`` on a machine without CUDA.
    """
    if isinstance(spec, torch.device):
        return spec
    name = str(spec).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device '{spec}' was requested but CUDA is not available on this machine; "
                "use --device cpu or --device auto."
            )
        return torch.device(name)
    raise ConfigError(f"unknown device '{spec}'; choose one of {', '.join(DEVICE_CHOICES)}.")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process logs, prints progress and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher) set WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def distributed_context(device: torch.device) -> DistributedContext:
    """Join the process group when launched by ``torchrun``; otherwise a single process.

    The backend is nccl for CUDA devices and gloo for CPU. Each rank uses
    ``cuda:LOCAL_RANK`` when the device is CUDA. A group joined here is left at
    interpreter exit (:func:`leave_process_group`): a gloo group torn down with the
    interpreter instead can abort a rank that finishes early ("terminate called
    without an active exception").
    """
    if not launched_by_torchrun():
        return DistributedContext()
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            visible = torch.cuda.device_count()
            if local_rank >= visible:
                raise ConfigError(
                    f"torchrun started local rank {local_rank}, but only {visible} CUDA "
                    f"device(s) are visible: use --nproc_per_node={visible} (one process per "
                    "GPU; NCCL refuses two ranks on one GPU) or train on the CPU with "
                    "--set device=cpu"
                )
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        atexit.register(leave_process_group)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def leave_process_group() -> None:
    """Destroy the default process group, if one is up (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, ctx: DistributedContext) -> torch.device:
    """The device this rank should use (``cuda:LOCAL_RANK`` under torchrun)."""
    if device.type == "cuda" and ctx.enabled:
        return torch.device("cuda", ctx.local_rank)
    return device


def is_main_process() -> bool:
    """True on rank 0, or when not running distributed."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
