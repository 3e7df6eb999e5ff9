"""The one training loop every method in counterfeit runs through.

A method is a :class:`TrainingMethod`: an ``nn.Module`` that owns its networks,
says which optimizers and schedulers it wants, and implements
``train_step(batch, ctx)`` returning scalar metrics. The :class:`Trainer` owns
everything else: device choice, bf16 autocast and channels_last on CUDA,
data-parallel training under ``torchrun``, learning-rate schedules, a progress
bar with live metrics, periodic evaluation, checkpoints that resume to the same
numbers, a NaN guard and graceful Ctrl-C.

Data parallelism follows the pattern GAN code bases use (e.g. StyleGAN2-ADA,
Karras et al. 2020): every rank holds a full replica, parameters and buffers
are broadcast from rank 0 at start, and each ``ctx.optimizer_step(opt)``
averages that optimizer's gradients across ranks with one coalesced
all-reduce before stepping. Unlike wrapping each network in
``DistributedDataParallel`` this supports any number of forward/backward
passes and optimizers per step (generator and discriminator updates, gradient
reversal), which is what adversarial methods need. Data is sharded with
:class:`torch.utils.data.DistributedSampler` (see :mod:`gan.data.loaders`).
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from counterfeit.gan.checkpoint import (
    FORMAT,
    capture_rng_state,
    load_checkpoint,
    load_module_state,
    restore_rng_state,
    save_atomic,
)
from counterfeit.gan.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    TrainingInterrupted,
)
from counterfeit.gan.runtime import (
    DistributedContext,
    distributed_context,
    rank_device,
    resolve_device,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from tqdm.auto import tqdm

Metrics = Mapping[str, "torch.Tensor | float"]


class TrainerConfig(BaseModel):
    """How long and where to train, and how often to log, evaluate and checkpoint.

    Exactly one of ``max_steps`` / ``max_epochs`` sets the length (an epoch is
    one pass over the first data stream).
    """

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(None, gt=0)
    max_epochs: int | None = Field(None, gt=0)
    max_minutes: float | None = Field(
        None,
        gt=0,
        description="also stop (with a checkpoint) after this much wall time, checked on "
        "logging steps",
    )
    device: str = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, off on CPU"
    )
    channels_last: bool | None = Field(None, description="None: on for CUDA, off for CPU")
    log_every: int = Field(10, gt=0)
    eval_every: int | None = Field(None, gt=0)
    checkpoint_every: int | None = Field(None, gt=0)
    progress: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _one_length(self) -> TrainerConfig:
        if (self.max_steps is None) == (self.max_epochs is None):
            raise ValueError("set exactly one of max_steps and max_epochs")
        return self


class TrainingMethod(nn.Module):
    """Base class for anything the :class:`Trainer` trains.

    Subclasses build their networks in ``__init__`` and implement
    :meth:`configure_optimizers` and :meth:`train_step`; they may override
    :meth:`configure_schedulers`. Everything registered on the module (networks,
    EMA copies, buffers) is checkpointed through ``state_dict``.
    ``progress_metrics`` names the metrics shown on the progress bar (all are logged).
    """

    progress_metrics: tuple[str, ...] = ("loss",)

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

    def init_args(self) -> dict[str, Any]:
        """Constructor arguments (plain values) that rebuild this method from a checkpoint.

        Saved in every checkpoint beside the weights, so tools such as
        ``counterfeit translate`` can rebuild the networks without the recipe.
        """
        return {}


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


class Callback:
    """Hook into training. ``on_step`` runs on rank 0 every ``every`` steps (0: never).

    Return a dict of scalars to have them logged and printed, or None.
    """

    every: int = 0

    def on_step(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        return None

    def on_end(self, trainer: Trainer) -> dict[str, float] | None:
        return None


class EvalCallback(Callback):
    """Periodic evaluation: ``fn(method) -> {name: value}``, run in eval mode and no_grad."""

    def __init__(
        self,
        fn: Callable[[TrainingMethod], dict[str, float]],
        every: int,
        prefix: str = "eval/",
        at_end: bool = True,
    ) -> None:
        self.fn = fn
        self.every = every
        self.prefix = prefix
        self.at_end = at_end

    def _run(self, trainer: Trainer) -> dict[str, float]:
        method = trainer.method
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():
                values = self.fn(method)
        finally:
            method.train(was_training)
        return {f"{self.prefix}{k}": float(v) for k, v in values.items()}

    def on_step(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        return self._run(trainer)

    def on_end(self, trainer: Trainer) -> dict[str, float] | None:
        return self._run(trainer) if self.at_end else None


class CollapseStop(Callback):
    """Stop when a monitored score collapses, keeping the weights from before the fall.

    Every ``every`` steps, :meth:`measure` (``score(method)``, higher is better, run in
    eval mode without gradients) is compared with the previous check's. When it falls
    by more than ``drop``, the method's weights of that previous check are restored and
    training stops (``TrainResult.stopped_early`` says when and why). Otherwise the
    weights are kept in memory as the new fallback. This is Wong et al. 2020's early stop for
    catastrophic overfitting (:class:`robust.CatastrophicOverfittingStop`), applied
    to any score: for DANN, source validation accuracy, which needs no target label
    and falls to chance when the adversarial game collapses.

    Its state (the last score and weights) is not part of the Trainer's checkpoint:
    after a resume, the first check only sets the new baseline.

    Args:
        score: ``fn(method) -> float``, higher is better (subclasses may override
            :meth:`measure` instead and pass None).
        every: check interval in steps (>= 1).
        drop: the fall between two checks that counts as a collapse.
        name: the metric key the score is logged under (None: not logged, e.g. when an
            :class:`EvalCallback` already logs the same value).
        what: how the stop message names the score.
    """

    reason = "collapse"

    def __init__(
        self,
        score: Callable[[TrainingMethod], float] | None,
        every: int,
        *,
        drop: float = 0.2,
        name: str | None = "collapse/score",
        what: str = "the monitored score",
    ) -> None:
        if every < 1:
            raise ConfigError(f"every must be >= 1, got {every}.")
        if drop <= 0:
            raise ConfigError(f"drop must be > 0, got {drop}.")
        if score is None and type(self).measure is CollapseStop.measure:
            raise ConfigError("CollapseStop needs a score function: score(method) -> float.")
        self.score = score
        self.every = every
        self.drop = drop
        self.name = name
        self.what = what
        self.previous: float | None = None
        self.saved_step: int | None = None
        self._saved_state: dict[str, torch.Tensor] | None = None

    def measure(self, method: TrainingMethod) -> float:
        """``score(method)`` in eval mode and without gradients."""
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():
                return float(self.score(method))  # type: ignore[misc]
        finally:
            method.train(was_training)

    def on_step(self, trainer: Trainer, step: int) -> dict[str, float] | None:
        method = trainer.method
        value = self.measure(method)
        if self.previous is not None and value < self.previous - self.drop:
            method.load_state_dict(self._saved_state)
            trainer.request_stop(
                f"{self.reason} at step {step}: {self.what} fell from {self.previous:.3f} to "
                f"{value:.3f}; weights restored to step {self.saved_step}"
            )
        else:
            self.previous = value
            self.saved_step = step
            self._saved_state = copy.deepcopy(method.state_dict())
        return {self.name: value} if self.name else None


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    steps: int
    wall_time: float
    steps_per_second: float
    last_metrics: dict[str, float]
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    resumed_from: int | None = None
    stopped_early: str | None = None


class Trainer:
    """Runs a :class:`TrainingMethod` on a stream of batches.

    Args:
        method: the method to train.
        data: an endless, resumable batch stream (:class:`gan.data.InfiniteLoader`
            or :class:`gan.data.ZipLoader`); anything with ``__next__``, ``__len__``
            (batches per epoch), ``state_dict`` and ``load_state_dict``.
        config: :class:`TrainerConfig`.
        tracker: a :class:`gan.tracking.Tracker` for metrics (rank 0 only), or None.
        callbacks: evaluation and logging hooks.
        checkpoint_path: where to write the checkpoint (atomically); None: never.
    """

    def __init__(
        self,
        method: TrainingMethod,
        data: Iterator,
        config: TrainerConfig,
        *,
        tracker: Any = None,
        callbacks: list[Callback] | tuple[Callback, ...] = (),
        checkpoint_path: str | Path | None = None,
        description: str = "train",
    ) -> None:
        self.method = method
        self.data = data
        self.config = config
        self.callbacks = list(callbacks)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.description = description
        self.device = resolve_device(config.device)
        self.dist = distributed_context(self.device)
        self.device = rank_device(self.device, self.dist)
        self.tracker = tracker if self.dist.is_main else None
        on_cuda = self.device.type == "cuda"
        amp = config.amp if config.amp != "auto" else ("bf16" if on_cuda else "off")
        self.amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        self.channels_last = on_cuda if config.channels_last is None else config.channels_last
        self.step = 0
        self.stop_reason: str | None = None
        self._stop_is_final = True
        self._interrupt = threading.Event()
        self._checkpoint_written: Path | None = None

    def request_stop(self, reason: str, final: bool = True) -> None:
        """Stop after the current step (early stopping, e.g. from a :class:`Callback`).

        ``fit`` then logs, writes a checkpoint, runs the callbacks' ``on_end`` and
        returns normally with ``TrainResult.stopped_early = reason``. Resuming that
        checkpoint does not train further when the stop is ``final`` (a decision about
        the model, such as catastrophic overfitting); it continues when it is not (the
        time budget: the resumed run gets a fresh one).
        """
        self.stop_reason = reason
        self._stop_is_final = final

    @property
    def total_steps(self) -> int:
        if self.config.max_steps is not None:
            return self.config.max_steps
        return self.config.max_epochs * len(self.data)  # type: ignore[operator,arg-type]

    def fit(self, resume: bool = False) -> TrainResult:
        """Train to ``total_steps``; with ``resume`` continue from the checkpoint first.

        Raises:
            NonFiniteLossError: a metric became NaN/inf (last good checkpoint kept).
            TrainingInterrupted: Ctrl-C; a checkpoint was written before stopping.
            CheckpointError: ``resume`` without a readable, matching checkpoint.
        """
        method = self.method.to(self.device)
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            _broadcast_state(method)
        self.optimizers = method.configure_optimizers()
        total = self.total_steps
        self.schedulers = method.configure_schedulers(self.optimizers, total)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        resumed_from = None
        if resume:
            resumed_from = self._load(self._require_checkpoint())
        else:
            torch.manual_seed(self.config.seed + 7919 * self.dist.rank)
        ctx = StepContext(
            total, self.optimizers, self.device, self.amp_dtype, self.scaler, self.dist
        )
        show = self.config.progress and self.dist.is_main
        bar = tqdm(
            total=total,
            initial=self.step,
            desc=self.description,
            disable=not show,
            dynamic_ncols=True,
            leave=True,
        )
        window: list[tuple[int, Metrics]] = []
        last: dict[str, float] = {}
        evaluations: list[tuple[int, dict[str, float]]] = []
        start, start_step = time.perf_counter(), self.step
        method.train()
        with self._sigint_handler():
            while self.step < total and self.stop_reason is None:
                batch = _to_device(next(self.data), self.device, self.channels_last)
                ctx.step = self.step
                metrics = method.train_step(batch, ctx)
                for scheduler in self.schedulers.values():
                    scheduler.step()
                window.append((self.step, metrics))
                self.step += 1
                bar.update(1)
                done = self.step == total
                ckpt_due = self._due(self.config.checkpoint_every) or done
                if self._due(self.config.log_every) or ckpt_due or self._interrupt.is_set():
                    last = self._flush(window, bar)
                    window = []
                if self.dist.is_main:
                    for callback in self.callbacks:
                        if callback.every and self.step % callback.every == 0 and not done:
                            self._report(callback.on_step(self, self.step), evaluations, bar)
                # The budget is checked on logging steps only, so that under torchrun the
                # ranks agree on stopping without a broadcast (and a device sync) every step.
                budget_due = self.config.max_minutes is not None and self._due(
                    self.config.log_every or 1
                )
                if budget_due and not done and self.dist.is_main and self._over_time_budget(start):
                    self.request_stop(
                        f"time budget of {self.config.max_minutes} minutes reached", final=False
                    )
                if self.dist.enabled and not done and (self._callbacks_due() or budget_due):
                    self._share_stop_request()
                if self.stop_reason is not None:
                    last = self._flush(window, bar) or last
                    window = []
                    ckpt_due = True
                if ckpt_due or self._interrupt.is_set():
                    self.save_checkpoint()
                if self._interrupt.is_set():
                    bar.close()
                    raise TrainingInterrupted(self.step, self._checkpoint_written)
        bar.close()
        if self.dist.is_main:
            for callback in self.callbacks:
                self._report(callback.on_end(self), evaluations, None)
        wall = time.perf_counter() - start
        steps = self.step - start_step
        return TrainResult(
            steps=self.step,
            wall_time=wall,
            steps_per_second=steps / wall if wall > 0 else float("nan"),
            last_metrics=last,
            evaluations=evaluations,
            resumed_from=resumed_from,
            stopped_early=self.stop_reason,
        )

    # -- checkpoints -------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: method, optimizers, schedulers, scaler, step, RNG, data."""
        return {
            "format": FORMAT,
            "step": self.step,
            "method_class": type(self.method).__name__,
            "method_init": self.method.init_args(),
            "method": self.method.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "data": self.data.state_dict(),  # type: ignore[attr-defined]
            "seed": self.config.seed,
            "stop_reason": self.stop_reason if self._stop_is_final else None,
        }

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint atomically (rank 0 only); returns its path."""
        if self.checkpoint_path is None or not self.dist.is_main:
            return None
        self._checkpoint_written = save_atomic(self.state_dict(), self.checkpoint_path)
        return self._checkpoint_written

    def _require_checkpoint(self) -> Path:
        if self.checkpoint_path is None:
            raise CheckpointError("cannot resume: this run has no checkpoint path.")
        if not self.checkpoint_path.is_file():
            raise CheckpointError(
                f"cannot resume: no checkpoint at {self.checkpoint_path}. "
                "Run without --resume to start from scratch."
            )
        return self.checkpoint_path

    def _load(self, path: Path) -> int:
        state = load_checkpoint(path, map_location=self.device)
        if state.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a counterfeit training checkpoint.")
        if state.get("seed") != self.config.seed:
            raise CheckpointError(
                f"cannot resume {path}: it was trained with seed {state.get('seed')}, "
                f"this run uses seed {self.config.seed}."
            )
        load_module_state(self.method, state["method"], str(path))
        for name, optimizer in self.optimizers.items():
            if name not in state["optimizers"]:
                raise CheckpointError(f"{path} has no state for optimizer '{name}'.")
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.scaler.load_state_dict(state["scaler"])
        self.data.load_state_dict(state["data"])  # type: ignore[attr-defined]
        restore_rng_state(state["rng"])
        if self.dist.rank:
            torch.manual_seed(self.config.seed + 7919 * self.dist.rank + state["step"])
        self.step = int(state["step"])
        self.stop_reason = state.get("stop_reason")
        self._checkpoint_written = path
        return self.step

    # -- early stopping ------------------------------------------------------

    def _over_time_budget(self, start: float) -> bool:
        budget = self.config.max_minutes
        return budget is not None and time.perf_counter() - start > budget * 60

    def _callbacks_due(self) -> bool:
        return any(c.every and self.step % c.every == 0 for c in self.callbacks)

    def _share_stop_request(self) -> None:
        """Callbacks run on rank 0 only: under torchrun, every rank follows its stop request."""
        flag = torch.tensor([int(self.stop_reason is not None)], device=self.device)
        dist.broadcast(flag, src=0)
        if bool(flag.item()) and self.stop_reason is None:
            self.stop_reason = "stop requested on rank 0"

    # -- logging -------------------------------------------------------------

    def _due(self, every: int | None) -> bool:
        return bool(every) and self.step % every == 0  # type: ignore[operator]

    def _flush(self, window: list[tuple[int, Metrics]], bar: tqdm) -> dict[str, float]:
        """Check the window's metrics for NaN/inf, then log their means."""
        if not window:
            return {}
        keys = list(dict.fromkeys(k for _, m in window for k in m))  # stages may differ
        values, steps = {}, {}
        for k in keys:
            steps[k] = [step for step, m in window if k in m]
            values[k] = torch.stack([_as_tensor(m[k]) for _, m in window if k in m])
        for key, series in values.items():
            bad = ~torch.isfinite(series)
            if bool(bad.any()):
                first = steps[key][int(bad.nonzero()[0, 0])] + 1  # steps are counted from 1
                raise NonFiniteLossError(first, key, self._checkpoint_written)
        means = {k: float(v.mean()) for k, v in values.items()}
        for name, optimizer in self.optimizers.items():
            means[f"lr/{name}"] = optimizer.param_groups[0]["lr"]
        if self.tracker is not None:
            self.tracker.log_metrics(means, step=self.step)
        shown = getattr(self.method, "progress_metrics", ()) or tuple(means)
        bar.set_postfix({k: f"{means[k]:.4g}" for k in shown if k in means}, refresh=False)
        return means

    def _report(self, values: dict[str, float] | None, evaluations: list, bar: tqdm | None) -> None:
        if not values:
            return
        evaluations.append((self.step, values))
        if self.tracker is not None:
            self.tracker.log_metrics(values, step=self.step)
        if self.config.progress:
            text = "  ".join(f"{k}={v:.4f}" for k, v in values.items())
            tqdm.write(f"[step {self.step}] {text}")

    @contextlib.contextmanager
    def _sigint_handler(self):
        """First Ctrl-C: finish the step, checkpoint, stop. Second: stop at once."""
        if self.dist.enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handle(signum, frame):
            if self._interrupt.is_set():
                raise KeyboardInterrupt
            self._interrupt.set()
            tqdm.write("Ctrl-C: finishing this step and writing a checkpoint (again to abort)...")

        signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _as_tensor(value: torch.Tensor | float) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().reshape(())
    return torch.tensor(float(value))


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        if device.type != "cpu" or batch.device != device:
            batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def _broadcast_state(module: nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


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
