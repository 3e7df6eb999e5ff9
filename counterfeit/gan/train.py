"""The one training loop every method in counterfeit runs through.

The :class:`Trainer` trains a :class:`gan.method.TrainingMethod` and owns everything
but the method's step: device choice, bf16 autocast and channels_last on CUDA,
data-parallel training under ``torchrun``, learning-rate schedules, progress with
live metrics (a bar on a terminal, plain lines in a log: :mod:`gan.progress`),
callbacks (:mod:`gan.callbacks`), checkpoints that resume to the same numbers (a
write the disk refuses keeps the previous one and training goes on), a NaN guard,
a time budget and graceful Ctrl-C.

:meth:`Trainer.fit` is a loop of small named steps, as in Lightning Fabric's
``build_your_own_trainer`` example: set up (or resume), one training step, logging,
callbacks, the stop checks, checkpointing, teardown.

Under ``torchrun`` every rank holds a full replica: parameters and buffers are
broadcast from rank 0 at start, and ``ctx.optimizer_step`` averages gradients
(:class:`gan.method.StepContext`). Data is sharded with
:class:`torch.utils.data.DistributedSampler` (see :mod:`gan.data.loaders`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from counterfeit.gan.checkpoint import (
    FORMAT,
    capture_rng_state,
    load_checkpoint,
    load_module_state,
    restore_rng_state,
    save_atomic,
)
from counterfeit.gan.errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from counterfeit.gan.method import Metrics, StepContext, TrainingMethod
from counterfeit.gan.progress import Progress, make_progress, progress_mode
from counterfeit.gan.runtime import distributed_context, rank_device, resolve_device

if TYPE_CHECKING:
    from counterfeit.gan.callbacks import Callback


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
    progress: bool = Field(
        True, description="a live bar on a terminal, one plain line every few logs elsewhere"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _one_length(self) -> TrainerConfig:
        if (self.max_steps is None) == (self.max_epochs is None):
            raise ValueError("set exactly one of max_steps and max_epochs")
        return self


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


@dataclass
class _Run:
    """The state of one :meth:`Trainer.fit` call."""

    ctx: StepContext
    progress: Progress
    start: float
    start_step: int
    resumed_from: int | None
    window: list[tuple[int, Metrics]] = field(default_factory=list)
    last: dict[str, float] = field(default_factory=dict)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)


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
        run = self._setup(resume)
        total = run.ctx.total_steps
        with self._sigint_handler(run):
            while self.step < total and self.stop_reason is None:
                self._training_step(run)
                done = self.step == total
                checkpoint_due = self._due(self.config.checkpoint_every) or done
                if self._due(self.config.log_every) or checkpoint_due or self._interrupt.is_set():
                    self._log(run)
                self._run_callbacks(run, done)
                self._check_stop(run, done)
                if self.stop_reason is not None:
                    self._log(run)
                if checkpoint_due or self.stop_reason is not None or self._interrupt.is_set():
                    self._checkpoint(run)
                if self._interrupt.is_set():
                    run.progress.close()
                    raise TrainingInterrupted(self.step, self._checkpoint_written)
        return self._teardown(run)

    # -- the steps of fit ------------------------------------------------------

    def _setup(self, resume: bool) -> _Run:
        """Place the method, build its optimizers, schedulers and scaler; resume or seed."""
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
        resumed_from = self._resume_or_seed(resume)
        ctx = StepContext(
            total, self.optimizers, self.device, self.amp_dtype, self.scaler, self.dist
        )
        mode = progress_mode(self.config.progress and self.dist.is_main)
        progress = make_progress(mode, total, self.step, self.description, self.config.log_every)
        run = _Run(ctx, progress, time.perf_counter(), self.step, resumed_from)
        method.train()
        return run

    def _resume_or_seed(self, resume: bool) -> int | None:
        """Load the checkpoint (returns its step), or seed this rank's fresh run."""
        if resume:
            return self._load(self._require_checkpoint())
        torch.manual_seed(self.config.seed + 7919 * self.dist.rank)
        return None

    def _training_step(self, run: _Run) -> None:
        """One batch through the method's ``train_step``, the schedulers, the step count."""
        batch = _to_device(next(self.data), self.device, self.channels_last)
        run.ctx.step = self.step
        metrics = self.method.train_step(batch, run.ctx)
        for scheduler in self.schedulers.values():
            scheduler.step()
        run.window.append((self.step, metrics))
        self.step += 1
        run.progress.advance()

    def _log(self, run: _Run) -> None:
        """Check the metrics of the steps since the last log for NaN/inf, then log their means."""
        if not run.window:
            return
        window, run.window = run.window, []
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
        run.progress.show(self.step, {k: f"{means[k]:.4g}" for k in shown if k in means})
        run.last = means

    def _run_callbacks(self, run: _Run, done: bool) -> None:
        """On rank 0, the callbacks due at this step (after the last one: ``on_end`` only)."""
        if not self.dist.is_main or done:
            return
        for callback in self.callbacks:
            if callback.every and self.step % callback.every == 0:
                self._report(run, callback.on_step(self, self.step))

    def _check_stop(self, run: _Run, done: bool) -> None:
        """Stop on the time budget; under torchrun, every rank follows rank 0's request."""
        # The budget is checked on logging steps only, so that under torchrun the ranks agree
        # on stopping without a broadcast (and a device sync) every step.
        budget_due = self.config.max_minutes is not None and self._due(self.config.log_every or 1)
        if budget_due and not done and self.dist.is_main and self._over_time_budget(run.start):
            self.request_stop(
                f"time budget of {self.config.max_minutes} minutes reached", final=False
            )
        if self.dist.enabled and not done and (self._callbacks_due() or budget_due):
            self._share_stop_request()

    def _teardown(self, run: _Run) -> TrainResult:
        """Close the progress display, run the callbacks' ``on_end``, sum the run up."""
        run.progress.close()
        if self.dist.is_main:
            for callback in self.callbacks:
                self._report(run, callback.on_end(self))
        wall = time.perf_counter() - run.start
        steps = self.step - run.start_step
        return TrainResult(
            steps=self.step,
            wall_time=wall,
            steps_per_second=steps / wall if wall > 0 else float("nan"),
            last_metrics=run.last,
            evaluations=run.evaluations,
            resumed_from=run.resumed_from,
            stopped_early=self.stop_reason,
        )

    def _report(self, run: _Run, values: dict[str, float] | None) -> None:
        """Keep, log and print what a callback returned."""
        if not values:
            return
        run.evaluations.append((self.step, values))
        if self.tracker is not None:
            self.tracker.log_metrics(values, step=self.step)
        if self.config.progress:
            text = "  ".join(f"{k}={v:.4f}" for k, v in values.items())
            run.progress.write(f"[step {self.step}] {text}")

    def _due(self, every: int | None) -> bool:
        return bool(every) and self.step % every == 0  # type: ignore[operator]

    # -- checkpoints -------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A resume's needs: method, optimizers, schedulers, scaler, step, RNGs, data, callbacks."""
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
            "callbacks": {key: c.state_dict() for key, c in self._keyed_callbacks()},
            "seed": self.config.seed,
            "stop_reason": self.stop_reason if self._stop_is_final else None,
        }

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint atomically (rank 0 only); returns its path."""
        if self.checkpoint_path is None or not self.dist.is_main:
            return None
        self._checkpoint_written = save_atomic(self.state_dict(), self.checkpoint_path)
        return self._checkpoint_written

    def _checkpoint(self, run: _Run) -> None:
        """Write the checkpoint; a write the file system refuses warns and training goes on."""
        try:
            self.save_checkpoint()
        except CheckpointError as exc:
            every = self.config.checkpoint_every
            if every and self.step < run.ctx.total_steps:
                then = f"the next checkpoint is tried at step {(self.step // every + 1) * every}"
            else:
                then = "the trained method is still used for what follows this training"
            run.progress.write(
                f"warning: {exc} Training goes on with its state in memory; {then}.",
                file=sys.stderr,
            )

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
        saved = state.get("callbacks", {})
        for key, callback in self._keyed_callbacks():
            if key in saved:
                callback.load_state_dict(saved[key])
        restore_rng_state(state["rng"])
        if self.dist.rank:
            torch.manual_seed(self.config.seed + 7919 * self.dist.rank + state["step"])
        self.step = int(state["step"])
        self.stop_reason = state.get("stop_reason")
        self._checkpoint_written = path
        return self.step

    def _keyed_callbacks(self) -> list[tuple[str, Callback]]:
        """The callbacks by position and class, as their state is keyed in a checkpoint."""
        return [(f"{i}/{type(c).__name__}", c) for i, c in enumerate(self.callbacks)]

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

    @contextlib.contextmanager
    def _sigint_handler(self, run: _Run):
        """First Ctrl-C: finish the step, checkpoint, stop. Second: stop at once."""
        if self.dist.enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handle(signum, frame):
            if self._interrupt.is_set():
                raise KeyboardInterrupt
            self._interrupt.set()
            run.progress.write(
                "Ctrl-C: finishing this step and writing a checkpoint (again to abort)..."
            )

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
