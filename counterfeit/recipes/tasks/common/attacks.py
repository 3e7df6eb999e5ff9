"""What the attack tasks (``robust-train``, ``robustness``, ``patch``, ``advgan``) share.

The attacked model (loaded, or trained here) and its data, the robustness
evaluation a recipe's ``evaluation`` block asks for, and attack success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from counterfeit.gan.data.domains import build_domain
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.runtime import seed_everything
from counterfeit.gan.tracking import is_mlflow_uri
from counterfeit.gan.train import Trainer, TrainerConfig
from counterfeit.recipes.context import RunContext
from counterfeit.recipes.inputs import check_model_file
from counterfeit.recipes.schema import AttackData, AttackedModelConfig, RobustEvaluationConfig
from counterfeit.recipes.tasks.base import Task
from counterfeit.robust.evaluate import evaluate
from counterfeit.robust.loading import check_input, input_shape, load_model
from counterfeit.robust.models import digits_cnn
from counterfeit.robust.normalize import Normalize
from counterfeit.robust.report import RobustnessReport
from counterfeit.robust.training import AdversarialTraining


def load_attacked_model(
    path: str | Path,
    *,
    arch: str | None,
    trust_pickle: bool,
    normalize,
    device: torch.device,
    produced_by: str | None = None,
    setting: str = "model",
) -> torch.nn.Module:
    """Load a saved classifier, wrapped in its ``normalize`` when given (mode untouched).

    A missing file names the recipe that writes it (``produced_by``) and the recipe
    ``setting`` that points elsewhere.
    """
    if not is_mlflow_uri(path):
        path = Path(path).expanduser()
        check_model_file(path, setting, produced_by)
    model = load_model(path, arch=arch, trust_pickle=trust_pickle, device=device)
    if normalize is not None:
        model = Normalize(model, normalize.mean, normalize.std).to(device)
    return model


def image_shape(
    model: torch.nn.Module | None, channels: int | None, size: int | None, name: str = "the model"
) -> tuple[int, int]:
    """(channels, size) of the images ``model`` takes: as given, else as its .pt2 recorded;
    checked on one tiny batch (a :class:`ShapeError` names a mismatch)."""
    inner = model.model if isinstance(model, Normalize) else model
    shape = input_shape(inner) if inner is not None else None
    channels = channels or (shape[0] if shape else None)
    size = size or (shape[1] if shape else None)
    if channels is None or size is None:
        raise ConfigError(
            f"cannot tell which image shape {name} takes (only .pt2 programs record it): "
            "set data.channels and data.image_size (--channels, --image-size)."
        )
    if model is not None:
        check_input(model, (channels, size, size), str(name))
    return channels, size


def attack_splits(
    data: AttackData, model: torch.nn.Module | None, name: str = "the model"
) -> tuple[ImageTensors, ImageTensors, int, int]:
    """(train split, test split, channels, size); the shape defaults to a .pt2 model's."""
    channels, size = image_shape(model, data.channels, data.image_size, name)
    train = build_domain(data.dataset, "train", size, channels)
    test = build_domain(data.dataset, "test", size, channels)
    for split in (train, test):
        if not split.has_labels:
            raise DataError(f"{split.name} has no labels: measuring a targeted attack needs them.")
    if data.n_train is not None:
        train = train.take(data.n_train)
    return train, test, channels, size


def saved_attacked_model(
    config: AttackedModelConfig,
    produced_by: str | None,
    data: AttackData,
    device: torch.device,
) -> tuple[torch.nn.Module, ImageTensors, ImageTensors]:
    """The saved model ``config.path`` (in eval mode), checked on its data's shape, and the
    data splits; nothing is written."""
    model = load_attacked_model(
        config.path,
        arch=config.arch,
        trust_pickle=config.trust_pickle,
        normalize=config.normalize,
        device=device,
        produced_by=produced_by,
        setting="classifier.path",
    ).eval()
    train, test, _, _ = attack_splits(data, model, str(config.path))
    return model, train, test


def attacked_model(
    ctx: RunContext,
    config: AttackedModelConfig,
    produced_by: str | None,
    data: AttackData,
    seed: int,
) -> tuple[torch.nn.Module, ImageTensors, ImageTensors]:
    """The attacked model (loaded, or trained and exported here) and the data splits."""
    if config.path is not None:
        return saved_attacked_model(config, produced_by, data, ctx.device)
    train, test, channels, size = attack_splits(data, None)
    seed_everything(seed)
    model = digits_cnn(channels, max(train.num_classes, test.num_classes), size)
    method = AdversarialTraining(model, method="standard", lr=config.lr, lr_peak=0.4)
    trainer = Trainer(
        method,
        InfiniteLoader(train, config.batch_size, seed=seed),
        TrainerConfig(
            max_steps=config.train_steps,
            device=str(ctx.device),
            progress=False,
            log_every=max(1, config.train_steps // 10),
            seed=seed,
        ),
        tracker=ctx.tracker.scoped("classifier/") if ctx.tracker.active else None,
        description="classifier",
    )
    result = trainer.fit()
    model = method.model.eval()
    export = ctx.export(model, test, "classifier")
    ctx.print(
        f"trained the digits CNN: {result.steps} steps in {result.wall_time:.0f}s -> {export}"
    )
    return model, train, test


class AttackedModelTask(Task):
    """A task that attacks ``recipe.classifier``: a saved one is loaded and checked on its
    data by :meth:`check`, before any output exists; without one, :meth:`prepare` trains it."""

    model_files = ("classifier.path",)
    _saved: tuple[torch.nn.Module, ImageTensors, ImageTensors] | None = None

    def check(self) -> None:
        super().check()
        r = self.recipe
        if r.classifier.path is not None:
            self._saved = saved_attacked_model(r.classifier, r.produced_by, r.data, self.ctx.device)

    def prepare(self) -> None:
        r = self.recipe
        self.model, self.train_set, self.test = self._saved or attacked_model(
            self.ctx, r.classifier, r.produced_by, r.data, r.seed
        )


@torch.no_grad()
def correct(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Which images ``model`` classifies right (one bool each), in batches."""
    return (
        torch.cat([model(x[s : s + batch_size]).argmax(1) for s in range(0, len(x), batch_size)])
        == y
    )


def attack_success(
    model: torch.nn.Module,
    attack: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    goal: torch.Tensor | None,
    batch_size: int,
) -> tuple[float, float]:
    """(success rate, images per second) of ``attack(x, y, goal)`` on ``model``: the share of
    images it moves off their label (untargeted, ``goal`` None) or onto ``goal``."""
    hits, started = 0, time.perf_counter()
    for s in range(0, len(x), batch_size):
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        gb = None if goal is None else goal[s : s + batch_size]
        x_adv = attack(xb, yb, gb)
        with torch.no_grad():
            pred = model(x_adv).argmax(1)
        hits += int((pred != yb).sum() if gb is None else (pred == gb).sum())
    seconds = time.perf_counter() - started
    return hits / len(x), len(x) / seconds


def evaluate_robustness(
    ctx: RunContext,
    config: RobustEvaluationConfig,
    model: torch.nn.Module,
    data: ImageTensors,
    name: str,
    seed: int,
) -> RobustnessReport:
    """:func:`robust.evaluate` of ``model`` on ``data`` as the recipe's evaluation block says."""
    return evaluate(
        model,
        data,
        attacks=config.attacks,
        eps=config.eps,
        norm=config.norm,
        minimum_norm=config.minimum_norm,
        corruptions=config.corruptions,
        severities=config.severities,
        attack_options=config.attack_options,
        batch_size=config.batch_size,
        max_examples=config.n,
        device=ctx.device,
        seed=seed,
        show=config.show,
        name=name,
    )


def comparison_table(reports: dict[str, RobustnessReport]) -> list[tuple[str, ...]]:
    """Model rows: clean, each attack and the worst case at the largest eps, corruptions."""
    first = next(iter(reports.values()))
    largest = max(first.eps)
    header = ["model", "clean acc"] + [f"{a} @ {largest:.3g}" for a in first.attacks]
    header += [f"worst @ {largest:.3g}", "corruptions (mean)"]
    rows = [tuple(header)]
    for name, r in reports.items():
        cells = [name, f"{r.clean_accuracy:.4f}"]
        cells += [f"{curve[-1]:.4f}" for curve in r.attacks.values()]
        cells.append(f"{r.worst_case[-1]:.4f}" if r.worst_case else "n/a")
        mean = r.mean_corruption_accuracy
        cells.append("n/a" if mean is None else f"{mean:.4f}")
        rows.append(tuple(cells))
    return rows
