"""Recipe schema blocks that several tasks share; pydantic models a recipe YAML is validated against.

A recipe names its ``task``; :data:`recipes.tasks.TASKS` maps each task to its
class, whose ``schema`` (a :class:`RecipeBase` subclass) lives beside it in
``counterfeit/recipes/tasks/NAME.py`` and is built from these blocks. Every model forbids
unknown keys, so a typo is an error that names the key and the file instead of
a silently ignored setting.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from counterfeit.gan.data.domains import DomainSpec
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import DEVICE_CHOICES
from counterfeit.robust.corruptions import resolve_corruptions
from counterfeit.robust.evaluate import (
    DEFAULT_CURVE,
    DEFAULT_L2_CURVE,
    resolve_attacks,
    resolve_minimum_norm,
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrackingConfig(StrictModel):
    """Where MLflow runs go. ``uri`` None: MLFLOW_TRACKING_URI, else MLflow's local default."""

    enabled: bool = True
    experiment: str = "counterfeit"
    uri: str | None = None
    run_name: str | None = None
    register_as: str | None = Field(
        None,
        min_length=1,
        description="register each exported model in MLflow's registry as NAME-METHOD "
        "(then --model models:/NAME-METHOD/VERSION)",
    )


class TrainConfig(StrictModel):
    """Training length and cadence (see :class:`gan.TrainerConfig`)."""

    steps: int = Field(gt=0)
    max_minutes: float | None = Field(None, gt=0, description="stop earlier at this wall time")
    batch_size: int = Field(64, gt=0, description="images per domain per step")
    log_every: int = Field(10, gt=0)
    eval_every: int | None = Field(None, gt=0)
    checkpoint_every: int | None = Field(500, gt=0)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    channels_last: bool | None = None
    progress: bool = True


class AdaptationData(StrictModel):
    """A labelled source domain and a target domain, converted to one image shape."""

    source: DomainSpec
    target: DomainSpec
    root: Path | None = Field(None, description="default data root for file-backed domains")
    image_size: int = Field(28, ge=8, le=1024)
    channels: Literal[1, 3] = 3
    augment: Literal["none", "light", "strong"] = Field(
        "none", description="albumentations preset applied to source training batches"
    )

    @model_validator(mode="after")
    def _share_root(self) -> AdaptationData:
        for spec in (self.source, self.target):
            if spec.root is None and self.root is not None:
                spec.root = self.root
        return self


class EvaluationConfig(StrictModel):
    batch_size: int = Field(512, gt=0)
    embedding: Literal["tsne", "pca", "none"] = "tsne"
    embedding_points: int = Field(300, gt=10, description="points per domain in the embedding plot")


class RecipeBase(StrictModel):
    """Keys every recipe has."""

    name: str
    description: str = ""
    task: str
    seed: int = 0
    device: str = "auto"
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str) -> str:
        if device not in DEVICE_CHOICES and not device.startswith("cuda:"):
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N")
        return device


class DANNModelConfig(StrictModel):
    """DANN hyper-parameters; defaults are Ganin et al. 2016, Sec. 5.2.2."""

    backbone: str = "ganin-mnist"
    backbone_weights: Path | None = None
    input_mean: Literal["data"] | list[float] | None = Field(
        "data", description="'data': channel mean of source+target training images (the paper)"
    )
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["dann", "constant"] = "dann"
    alpha: float = 10.0
    beta: float = 0.75
    gamma: float = 10.0
    lambda_max: float = Field(1.0, ge=0)
    domain_weight: float = Field(
        1.0, gt=0, description="weight of L_d(source) + L_d(target); 0.5 = mean over both"
    )
    ema_decay: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="evaluate and export an exponential moving average of the classifier's "
        "weights with this decay (null: the last iterate, as in the paper)",
    )
    trade_off: float = Field(
        1.0,
        ge=0,
        description="weight of the adaptation loss of methods cdan, cdan+e, mcc (mu) and mdd",
    )
    cdan_randomized: bool = Field(
        False, description="CDAN's randomized multilinear map (Long et al. 2018, Eq. 7)"
    )
    cdan_random_dim: int = Field(1024, ge=1, description="the randomized map's output size")
    mcc_temperature: float = Field(
        2.5, gt=0, description="MCC's temperature T (method mcc; Jin et al. 2020)"
    )
    mdd_margin: float = Field(
        4.0, gt=0, description="MDD's margin factor gamma (method mdd; Zhang et al. 2019)"
    )
    mdd_width: int = Field(
        1024, ge=1, description="width of MDD's bottleneck and of its heads' hidden layer"
    )


class NormalizeConfig(StrictModel):
    """Per-channel statistics the model expects (see robust.Normalize)."""

    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)


class RobustEvaluationConfig(StrictModel):
    """What :func:`robust.evaluate` measures (see docs/recipes.md)."""

    attacks: list[Literal["fgsm", "bim", "pgd", "apgd-ce", "apgd-t", "square", "autoattack"]] = (
        Field(default_factory=lambda: ["fgsm", "pgd"], min_length=1)
    )
    minimum_norm: list[Literal["deepfool", "cw"]] = Field(
        default_factory=list,
        description="minimum-norm attacks: success and median perturbation, no budget",
    )
    norm: Literal["Linf", "L2"] = Field(
        "Linf", description="the ball the attacks search (L2: fgsm is refused)"
    )
    eps: list[float] = Field(
        default_factory=lambda: list(DEFAULT_CURVE),
        min_length=1,
        description="budgets in pixel units: L-inf in [0, 1] (default 0, 2, 4, 8, 16 /255, "
        "0.1-0.3); L2 over (C, H, W) (default 0, 0.25, 0.5, 1, 1.5, 2, 3)",
    )
    attack_options: dict[str, dict[str, int | float | bool | str | list[str]]] = Field(
        default_factory=dict,
        description="keyword arguments per attack, e.g. {pgd: {steps: 40}, "
        "autoattack: {version: custom, attacks: [apgd-ce, square]}}",
    )
    corruptions: Literal["all", "none"] | list[str] = "all"
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    n: int | None = Field(1000, gt=0, description="evaluate at most this many test images")
    batch_size: int = Field(256, gt=0)
    show: int = Field(10, ge=1, le=50, description="example images in the plots")

    @field_validator("eps")
    @classmethod
    def _eps_in_range(cls, value: list[float], info: ValidationInfo) -> list[float]:
        linf = info.data.get("norm", "Linf") == "Linf"
        bad = [e for e in value if not 0 <= e <= (1 if linf else math.inf)]
        if bad:
            within = "in [0, 1] (L-inf, pixel units)" if linf else ">= 0 (L2)"
            raise ValueError(f"eps values must be {within}, got {bad}")
        return value

    @field_validator("severities")
    @classmethod
    def _severities(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if s not in (1, 2, 3, 4, 5)]
        if bad:
            raise ValueError(f"severities must be in 1-5, got {bad}")
        return value

    @field_validator("corruptions")
    @classmethod
    def _known_corruptions(cls, value):
        try:
            resolve_corruptions(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _known_options(self) -> RobustEvaluationConfig:
        if self.norm == "L2" and "eps" not in self.model_fields_set:
            self.eps = list(DEFAULT_L2_CURVE)
        try:
            options = dict(self.attack_options)
            resolve_minimum_norm(self.minimum_norm, options)
            resolve_attacks(self.attacks, options, norm=self.norm)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class AttackData(StrictModel):
    """Labelled images: the train split trains the attack, the test split measures it."""

    dataset: DomainSpec = Field(default_factory=lambda: DomainSpec(name="mnist-small"))
    root: Path | None = Field(None, description="data root for file-backed domains")
    image_size: int | None = Field(
        28, ge=8, le=1024, description="null: the size a .pt2 model was exported for"
    )
    channels: Literal[1, 3] | None = Field(1, description="null: from a .pt2 model")
    n_train: int | None = Field(None, gt=0, description="use at most this many training images")

    @model_validator(mode="after")
    def _share_root(self) -> AttackData:
        if self.dataset.root is None and self.root is not None:
            self.dataset.root = self.root
        return self


class AttackedModelConfig(StrictModel):
    """The attacked model: a saved one (``path``) or Wong et al.'s digits CNN trained here."""

    path: Path | None = Field(
        None, description=".pt2, TorchScript or a state_dict with arch; null: train digits-cnn"
    )
    arch: str | None = Field(None, description="module:Class for a state_dict")
    trust_pickle: bool = False
    normalize: NormalizeConfig | None = None
    train_steps: int = Field(800, gt=0, description="when training: steps of Adam, cyclic lr")
    batch_size: int = Field(100, gt=0)
    lr: float = Field(5e-3, gt=0)
