"""Recipe schema: pydantic models that a recipe YAML is validated against.

A recipe names its ``task``; :data:`recipes.tasks.TASKS` maps each task to its
schema class and its runner. Every model forbids unknown keys, so a typo is an
error that names the key and the file instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from counterfeit.gan.data.domains import DomainSpec
from counterfeit.gan.runtime import DEVICE_CHOICES
from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrackingConfig(StrictModel):
    """Where MLflow runs go. ``uri`` None: MLFLOW_TRACKING_URI, else MLflow's local default."""

    enabled: bool = True
    experiment: str = "counterfeit"
    uri: str | None = None
    run_name: str | None = None


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

    @model_validator(mode="after")
    def _device_name(self) -> RecipeBase:
        if self.device not in DEVICE_CHOICES and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N")
        return self


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


class DANNTrainConfig(TrainConfig):
    """DANN's training block: the shared one plus a label-free collapse guard."""

    collapse_drop: float | None = Field(
        0.2,
        gt=0,
        le=1,
        description="at each evaluation (eval_every), restore the previous evaluation's "
        "weights and stop when source validation accuracy fell by more than this (the "
        "adversarial game collapsing; no target label is used); null: off",
    )


class DANNRecipe(RecipeBase):
    """Train DANN and its baselines on one source/target pair, evaluate, plot, export."""

    task: Literal["dann"]
    data: AdaptationData
    model: DANNModelConfig = DANNModelConfig()
    train: DANNTrainConfig
    methods: list[Literal["dann", "source-only", "target-only"]] = Field(
        default_factory=lambda: ["dann", "source-only"], min_length=1
    )
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _unique_methods(self) -> DANNRecipe:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {self.methods}")
        return self


class PixelDAModelConfig(StrictModel):
    """PixelDA hyper-parameters; defaults are the authors' released MNIST -> MNIST-M values."""

    preset: Literal["paper", "small"] = "paper"
    generator_filters: int | None = Field(None, gt=0)
    generator_blocks: int | None = Field(None, ge=0)
    discriminator_filters: int | None = Field(None, gt=0)
    noise_dims: int = Field(10, ge=0)
    domain_weight: float = Field(0.135603587834, ge=0)
    style_weight: float = Field(0.0113173311334, ge=0)
    task_in_g_weight: float = Field(0.0100959947002, ge=0)
    content_weight: float = Field(0.0, ge=0, description="masked pairwise-MSE content loss")
    content_threshold: float = Field(0.5, ge=0, le=1)
    lr: float = Field(1e-3, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)
    lr_decay: float = Field(0.95, gt=0, le=1)
    lr_decay_every: int = Field(10_000, gt=0, description="our steps (one D + one G update)")
    noise_sigma: float = Field(0.2, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


class BaselinesConfig(StrictModel):
    """DANN-family baselines trained on the same data, reported beside the main method."""

    methods: list[Literal["source-only", "dann", "target-only"]] = Field(default_factory=list)
    steps: int = Field(3000, gt=0)
    batch_size: int = Field(32, gt=0)
    model: DANNModelConfig = DANNModelConfig()


class PixelDARecipe(RecipeBase):
    """Train PixelDA, log adaptation grids, evaluate on the target, compare with baselines."""

    task: Literal["pixelda"]
    data: AdaptationData
    model: PixelDAModelConfig = PixelDAModelConfig()
    train: TrainConfig
    samples_every: int | None = Field(500, gt=0, description="log a source -> adapted grid")
    baselines: BaselinesConfig = BaselinesConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
