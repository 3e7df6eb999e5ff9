"""What the :class:`gan.train.Trainer` trains: the :class:`TrainingMethod` contract.

A method is an ``nn.Module`` that owns its networks, records its constructor's
arguments (:meth:`TrainingMethod.save_hyperparameters`, so every checkpoint can
rebuild it), says which optimizers and schedulers it wants, and implements
``train_step(batch, ctx)`` returning scalar metrics. The :class:`StepContext` is
what a step may use from the Trainer: autocast, backward through the gradient
scaler, and optimizer steps.

Data parallelism follows the pattern GAN code bases use (e.g. StyleGAN2-ADA,
Karras et al. 2020): every rank holds a full replica and each
``ctx.optimizer_step(opt)`` averages that optimizer's gradients across ranks with
one coalesced all-reduce before stepping. Unlike wrapping each network in
``DistributedDataParallel`` this supports any number of forward/backward passes
and optimizers per step (generator and discriminator updates, gradient
reversal), which is what adversarial methods need.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from counterfeit.gan.runtime import DistributedContext

Metrics = Mapping[str, "torch.Tensor | float"]


class TrainingMethod(nn.Module):
    """Base class for anything the :class:`gan.train.Trainer` trains.

    Subclasses build their networks in ``__init__``, call :meth:`save_hyperparameters`
    there, and implement :meth:`configure_optimizers` and :meth:`train_step`; they may
    override :meth:`configure_schedulers`. Everything registered on the module
    (networks, EMA copies, buffers) is checkpointed through ``state_dict``.
    ``progress_metrics`` names the metrics shown on the progress bar (all are logged).

    Attributes:
        hparams: the constructor's arguments as plain values (see
            :meth:`save_hyperparameters`); empty until it is called.
    """

    progress_metrics: tuple[str, ...] = ("loss",)

    def __init__(self) -> None:
        super().__init__()
        self.hparams: dict[str, Any] = {}

    def save_hyperparameters(self, *, ignore: Collection[str] = (), **resolved: Any) -> None:
        """Record the calling ``__init__``'s arguments in :attr:`hparams`.

        In the spirit of Lightning's ``LightningModule.save_hyperparameters``: one call in
        ``__init__`` reads the constructor's named parameters from the calling frame, as
        they are bound at the call (so after any normalisation of them), and keeps them as
        plain JSON values (tuples become lists, paths strings). :meth:`init_args` returns
        this record and every checkpoint stores it, so ``type(m)(**m.init_args())``
        rebuilds the networks that ``m.state_dict()`` fills.

        Args:
            ignore: parameters left out: objects whose state the method's ``state_dict``
                holds or that the caller passes again (an attacked model, a pretrained
                classifier copied in, a weights file).
            **resolved: values recorded instead of the given ones, for settings the
                constructor resolves (preset sizes), so the record pins the networks down.

        Raises:
            TypeError: not called from ``__init__``; a name in ``ignore`` or ``resolved``
                that is not a parameter; a recorded value that is not a plain value.
        """
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        del frame  # a frame held in its own locals is a reference cycle
        if caller is None or caller.f_code.co_name != "__init__":
            raise TypeError(
                "save_hyperparameters records a constructor's arguments: call it in __init__."
            )
        code = caller.f_code
        names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
        unknown = sorted((set(ignore) | set(resolved)) - set(names))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.__init__ has no parameter {', '.join(unknown)}."
            )
        values = {name: caller.f_locals[name] for name in names if name not in ignore}
        values.update(resolved)
        self.hparams = {name: _plain(value, name) for name, value in values.items()}

    def init_args(self) -> dict[str, Any]:
        """Constructor arguments (plain values) that rebuild this method from a checkpoint.

        A copy of :attr:`hparams`. Saved in every checkpoint beside the weights, so tools
        such as ``counterfeit translate`` can rebuild the networks without the recipe.
        """
        return copy.deepcopy(self.hparams)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers, by name (e.g. ``{"model": SGD(...)}`` or ``{"g": ..., "d": ...}``)."""
        raise NotImplementedError

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, Any]:
        """Per-step learning-rate schedulers by name; the Trainer steps each once per step."""
        return {}

    def train_step(self, batch: Any, ctx: StepContext) -> Metrics:
        """One optimisation step on ``batch``; return scalar metrics (tensors or floats)."""
        raise NotImplementedError


@contextlib.contextmanager
def frozen(*modules: Any) -> Iterator[None]:
    """Switch off ``requires_grad`` of the modules' parameters for a block, restoring each
    parameter's own flag after it: D during G's step, the attacked model during an attack.
    Anything that is not an ``nn.Module`` (None, a plain function) is passed over."""
    params = [p for m in modules if isinstance(m, nn.Module) for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _plain(value: Any, name: str) -> Any:
    """``value`` as JSON-able builtins (lists, str-keyed dicts, numbers, strings, None)."""
    if value is None:
        return None
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v, name) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, name) for k, v in value.items()}
    raise TypeError(
        f"save_hyperparameters records plain values, but argument '{name}' is a "
        f"{type(value).__name__}; pass ignore=('{name}',) if the method's state_dict holds it."
    )


class StepContext:
    """What a method's ``train_step`` may use from the Trainer.

    Attributes:
        step: index of the step being taken (0-based).
        total_steps: the run's length in steps.
        optimizers: the optimizers from ``configure_optimizers``.
        device: where the batch and the method live.
    """

    def __init__(
        self,
        total_steps: int,
        optimizers: dict[str, torch.optim.Optimizer],
        device: torch.device,
        amp_dtype: torch.dtype | None,
        scaler: torch.amp.GradScaler,
        dist_ctx: DistributedContext,
    ) -> None:
        self.step = 0
        self.total_steps = total_steps
        self.optimizers = optimizers
        self.device = device
        self._amp_dtype = amp_dtype
        self._scaler = scaler
        self._dist = dist_ctx

    @classmethod
    def single_process(
        cls,
        optimizers: dict[str, torch.optim.Optimizer],
        total_steps: int,
        device: str | torch.device = "cpu",
    ) -> StepContext:
        """A context for calling ``train_step`` by hand (own loops, tests): no AMP, no DDP."""
        device = torch.device(device)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        return cls(total_steps, optimizers, device, None, scaler, DistributedContext())

    @property
    def progress(self) -> float:
        """Training progress p in [0, 1): ``step / total_steps``."""
        return self.step / self.total_steps

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward pass when AMP is on; a no-op otherwise."""
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """``loss.backward()``, through the fp16 gradient scaler when one is active."""
        self._scaler.scale(loss).backward(retain_graph=retain_graph)

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Average gradients across ranks (when distributed), then step ``optimizer``."""
        if self._dist.enabled:
            _all_reduce_gradients(optimizer, self._dist.world_size)
        if self._scaler.is_enabled():
            self._scaler.step(optimizer)
            self._scaler.update()
        else:
            optimizer.step()


def _all_reduce_gradients(optimizer: torch.optim.Optimizer, world_size: int) -> None:
    """Average the gradients of ``optimizer``'s parameters over ranks, one all-reduce."""
    grads = [
        p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world_size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
