"""Recipe schemas of the patch and AdvGAN tasks: ``patch`` and ``advgan``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from counterfeit.gan.data.domains import DomainSpec
from counterfeit.gan.losses import LOSSES
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.robust_schema import NormalizeConfig
from pydantic import Field, field_validator, model_validator


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


class ClassifierConfig(StrictModel):
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


class PatchConfig(StrictModel):
    """The adversarial patch (Brown et al. 2017); see robust.AdversarialPatch."""

    target: int = Field(3, ge=0, description="the class the patch should make the model see")
    shape: Literal["circle", "square"] = "circle"
    area: float = Field(0.2, gt=0, lt=1, description="fraction of the image at scale 1")
    scale: tuple[float, float] = (0.8, 1.2)
    rotation: float = Field(22.5, ge=0, le=180, description="degrees, drawn in [-r, r]")
    location: Literal["random", "center"] = "random"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(0.1, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    parameterization: Literal["sigmoid", "clip"] = "sigmoid"
    loss: Literal["ce", "margin", "probability"] = "ce"
    kappa: float = Field(5.0, ge=0)
    steps: int = Field(500, gt=0)
    batch_size: int = Field(64, gt=0)
    progress: bool = True

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"scale must be [min, max] with 0 < min <= max, got {list(value)}")
        return value


class PatchEvaluationConfig(StrictModel):
    n: int | None = Field(1000, gt=0, description="test images (none of the target class)")
    areas: list[float] = Field(
        default_factory=lambda: [0.05, 0.1, 0.2, 0.3], description="the success-vs-area curve"
    )
    trials: int = Field(1, gt=0, description="random placements per image")
    batch_size: int = Field(256, gt=0)
    show: int = Field(8, ge=1, le=32, description="patched examples in the figure")

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[float]) -> list[float]:
        bad = [a for a in value if not 0 < a < 1]
        if bad:
            raise ValueError(f"areas must be fractions in (0, 1), got {bad}")
        return value


class PatchRecipe(RecipeBase):
    """Train a universal adversarial patch against a classifier and measure it."""

    task: Literal["patch"]
    data: AttackData = Field(default_factory=AttackData)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    produced_by: str | None = Field(
        None, description="the recipe that writes classifier.path, named when it is missing"
    )
    patch: PatchConfig = Field(default_factory=PatchConfig)
    evaluation: PatchEvaluationConfig = Field(default_factory=PatchEvaluationConfig)


class AdvGANConfig(StrictModel):
    """AdvGAN (Xiao et al. 2018); see robust.AdvGAN."""

    eps: float = Field(0.3, gt=0, le=1, description="L-inf budget in pixel units")
    target: int | None = Field(None, ge=0, description="null: untargeted")
    gan_loss: str = "least-squares"
    adv_weight: float = Field(10.0, ge=0)
    gan_weight: float = Field(1.0, ge=0)
    hinge_weight: float = Field(0.0, ge=0)
    hinge_bound: float = Field(1.0, ge=0)
    kappa: float = Field(0.0, ge=0)
    lr: float = Field(1e-3, gt=0)
    width: int = Field(8, gt=0)
    blocks: int = Field(4, ge=0)

    @field_validator("gan_loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSSES:
            raise ValueError(f"unknown gan_loss '{value}'; choose one of {', '.join(LOSSES)}")
        return value


class AdvGANEvaluationConfig(StrictModel):
    n: int | None = Field(1000, gt=0)
    compare: list[Literal["fgsm", "pgd"]] = Field(default_factory=lambda: ["fgsm", "pgd"])
    pgd_steps: int = Field(10, gt=0)
    batch_size: int = Field(256, gt=0)
    show: int = Field(10, ge=1, le=50)


class AdvGANRecipe(RecipeBase):
    """Train an AdvGAN generator against a classifier; compare with FGSM/PGD at the same eps."""

    task: Literal["advgan"]
    data: AttackData = Field(default_factory=AttackData)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    produced_by: str | None = None
    advgan: AdvGANConfig = Field(default_factory=AdvGANConfig)
    train: TrainConfig
    evaluation: AdvGANEvaluationConfig = Field(default_factory=AdvGANEvaluationConfig)
