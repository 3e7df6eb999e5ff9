"""Recipe schemas of the robustness tasks: ``robust-train`` and ``robustness``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from counterfeit.gan.data.domains import DomainSpec
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.robust.corruptions import resolve_corruptions
from counterfeit.robust.evaluate import DEFAULT_CURVE, resolve_attacks
from pydantic import Field, field_validator, model_validator


class RobustEvaluationConfig(StrictModel):
    """What :func:`robust.evaluate` measures (see docs/recipes.md)."""

    attacks: list[Literal["fgsm", "bim", "pgd"]] = Field(
        default_factory=lambda: ["fgsm", "pgd"], min_length=1
    )
    eps: list[float] = Field(
        default_factory=lambda: list(DEFAULT_CURVE),
        min_length=1,
        description="L-inf budgets in [0, 1] pixel units (default 0, 2, 4, 8, 16 /255, 0.1-0.3)",
    )
    attack_options: dict[str, dict[str, int | float | bool | str]] = Field(
        default_factory=dict, description="keyword arguments per attack, e.g. {pgd: {steps: 40}}"
    )
    corruptions: Literal["all", "none"] | list[str] = "all"
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    n: int | None = Field(1000, gt=0, description="evaluate at most this many test images")
    batch_size: int = Field(256, gt=0)
    show: int = Field(10, ge=1, le=50, description="example images in the plots")

    @field_validator("eps")
    @classmethod
    def _eps_in_range(cls, value: list[float]) -> list[float]:
        bad = [e for e in value if not 0 <= e <= 1]
        if bad:
            raise ValueError(f"eps values must be in [0, 1] (pixel units), got {bad}")
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
        try:
            resolve_attacks(self.attacks, self.attack_options)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class RobustData(StrictModel):
    """A labelled domain to train on (its train split) and evaluate on (its test split)."""

    dataset: DomainSpec = Field(default_factory=lambda: DomainSpec(name="mnist-small"))
    root: Path | None = Field(None, description="data root for file-backed domains")
    image_size: int = Field(28, ge=8, le=1024)
    channels: Literal[1, 3] = 1
    holdout: int = Field(
        256, ge=0, description="training images kept out of training for the early-stop check"
    )

    @model_validator(mode="after")
    def _share_root(self) -> RobustData:
        if self.dataset.root is None and self.root is not None:
            self.dataset.root = self.root
        return self


class RobustModelConfig(StrictModel):
    arch: Literal["digits-cnn"] = Field(
        "digits-cnn", description="Wong et al. 2020's MNIST network (robust.models)"
    )


class AdversarialConfig(StrictModel):
    """Adversarial training; defaults are Wong et al. 2020's MNIST settings."""

    eps: float = Field(0.3, ge=0, le=1)
    step_size: float | None = Field(None, gt=0, description="FGSM-RS alpha; null: 1.25 eps")
    fgsm_weight: float = Field(0.5, ge=0, le=1, description="Goodfellow's clean-loss weight")
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(5e-3, gt=0, description="peak learning rate of the cycle")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["cyclic", "constant"] = "cyclic"
    lr_peak: float = Field(0.4, gt=0, lt=1)
    early_stop: bool = Field(True, description="stop on catastrophic overfitting")
    check_every: int | None = Field(None, gt=0, description="steps between checks; null: an epoch")
    check_drop: float = Field(0.2, gt=0, le=1)


class RobustTrainRecipe(RecipeBase):
    """Train classifiers (standard and/or adversarially), export them, evaluate robustness."""

    task: Literal["robust-train"]
    data: RobustData = Field(default_factory=RobustData)
    model: RobustModelConfig = Field(default_factory=RobustModelConfig)
    train: TrainConfig
    adversarial: AdversarialConfig = Field(default_factory=AdversarialConfig)
    methods: list[Literal["standard", "fgsm", "fgsm-rs"]] = Field(
        default_factory=lambda: ["standard", "fgsm-rs"], min_length=1
    )
    evaluation: RobustEvaluationConfig = Field(default_factory=RobustEvaluationConfig)

    @model_validator(mode="after")
    def _unique_methods(self) -> RobustTrainRecipe:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {self.methods}")
        return self


class EvaluationData(StrictModel):
    """The labelled images a saved model is evaluated on."""

    dataset: DomainSpec
    root: Path | None = None
    split: Literal["train", "test"] = "test"
    image_size: int | None = Field(
        None, ge=8, le=1024, description="null: the size a .pt2 model was exported for"
    )
    channels: Literal[1, 3] | None = Field(None, description="null: from a .pt2 model")

    @model_validator(mode="after")
    def _share_root(self) -> EvaluationData:
        if self.dataset.root is None and self.root is not None:
            self.dataset.root = self.root
        return self


class NormalizeConfig(StrictModel):
    """Per-channel statistics the model expects (see robust.Normalize)."""

    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)


class RobustnessRecipe(RecipeBase):
    """Evaluate a saved classifier under attacks and corruptions."""

    task: Literal["robustness"]
    model: Path = Field(description=".pt2, TorchScript, or a state_dict with arch")
    produced_by: str | None = Field(
        None, description="the recipe that writes `model`, named when the file is missing"
    )
    arch: str | None = Field(None, description="module:Class for a state_dict")
    trust_pickle: bool = False
    normalize: NormalizeConfig | None = None
    data: EvaluationData
    evaluation: RobustEvaluationConfig = Field(default_factory=RobustEvaluationConfig)
