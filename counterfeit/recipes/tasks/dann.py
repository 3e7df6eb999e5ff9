"""The ``dann`` task: DANN, its successors and its baselines on one source -> target pair.

Trains every method listed in the recipe (``dann``, ``source-only``, ``target-only``,
``cdan``, ``cdan+e``, ``mcc``, ``mdd``) from the same seed through :class:`gan.Trainer`.
The target test labels are sealed (:class:`adapt.selection.SealedTestSet`): training,
its evaluation curves and checkpoint selection see the target's images only (``target-only``,
the upper bound, trains on the target's *training* labels), and the report opens the test
labels once. Without ``selection`` the final model is evaluated (a
collapse guard, ``train.collapse_drop``, keeps the weights from before a fall of source
validation accuracy and stops); with ``selection: {validator, every}`` a checkpoint is
kept every ``every`` steps with every validator's score and the one ``validator`` ranks
first is shipped, its target accuracy reported beside the final checkpoint's and the
oracle's. Then: source and target accuracy, per-class target accuracy, target
prediction entropy and domain separability; confusion matrices, a before/after feature
embedding, evaluation curves and validator scores against target accuracy; each
classifier exported with ``torch.export``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from counterfeit.adapt.dann import DANN, Mode
from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.adapt.selection import CheckpointSelector, SealedTestSet
from counterfeit.adapt.validators import VALIDATORS, collapse_score
from counterfeit.gan.callbacks import Callback, CollapseStop, EvalCallback
from counterfeit.gan.data.loaders import ZipLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import (
    AdaptationData,
    DANNModelConfig,
    EvaluationConfig,
    RecipeBase,
    StrictModel,
    TrainConfig,
)
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.adaptation import (
    EVAL_SUBSET,
    build_dann,
    describe,
    load_domains,
    report_dann_methods,
    source_target_stream,
)
from counterfeit.recipes.tasks.common.selection import report_selection


def known_validator(name: str) -> str:
    """``name`` if it is a registered validator (a recipe error naming the known ones)."""
    if name not in VALIDATORS:
        raise ValueError(f"unknown validator '{name}'; known: {', '.join(VALIDATORS)}")
    return name


class DANNTrainConfig(TrainConfig):
    """DANN's training block: the shared one plus a label-free collapse guard."""

    collapse_drop: float | None = Field(
        0.2,
        gt=0,
        le=1,
        description="at each evaluation (eval_every), restore the previous evaluation's "
        "weights and stop when the collapse validator's score fell by more than this (the "
        "adversarial game collapsing; no target label is used); null: off",
    )
    collapse_validator: str = Field(
        "source-accuracy",
        description="the label-free score the collapse guard watches (collapse_drop is in "
        "its units)",
    )

    @field_validator("collapse_validator")
    @classmethod
    def _known_validator(cls, name: str) -> str:
        return known_validator(name)


class SelectionConfig(StrictModel):
    """Label-free checkpoint selection (see :mod:`counterfeit.adapt.selection`)."""

    validator: str = Field("snd", description="the validator whose first choice is shipped")
    every: int = Field(500, gt=0, description="steps between kept checkpoints")
    source_images: int = Field(1000, gt=0, description="source validation images scored")
    target_images: int = Field(1000, gt=0, description="unlabeled target images scored")

    @field_validator("validator")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_validator(name)


class DANNRecipe(RecipeBase):
    """Train DANN, its successors and baselines on one source/target pair, evaluate, plot,
    export."""

    task: Literal["dann"]
    data: AdaptationData
    model: DANNModelConfig = DANNModelConfig()
    train: DANNTrainConfig
    methods: list[Mode] = Field(default_factory=lambda: ["dann", "source-only"], min_length=1)
    evaluation: EvaluationConfig = EvaluationConfig()
    selection: SelectionConfig | None = None

    @model_validator(mode="after")
    def _unique_methods(self) -> DANNRecipe:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {self.methods}")
        return self


class DANNTask(Task):
    """DANN, its successors and its source-only / train-on-target baselines."""

    schema = DANNRecipe
    recipe: DANNRecipe
    independent = True

    def prepare(self) -> None:
        need = "target-only" in self.recipe.methods
        domains = load_domains(self.recipe.data, need_target_labels=need)
        self.ctx.print(describe(domains, self.recipe.data))
        self.sealed = SealedTestSet(domains.pop("target_test"))
        self.domains = domains  # no target test labels from here until the report
        self.selectors: dict[str, CheckpointSelector] = {}

    def method_names(self) -> list[str]:
        return list(self.recipe.methods)

    def build(self, name: str) -> DANN:
        return build_dann(self.recipe.model, name, self.domains)

    def data(self, name: str, method: DANN) -> ZipLoader:
        r = self.recipe
        labelled = name == "target-only"
        return source_target_stream(
            self.ctx, self.domains, r.data, r.train.batch_size, r.seed, labelled
        )

    def callbacks(self, name: str, method: DANN, data: Any) -> list[Callback]:
        t, selection = self.recipe.train, self.recipe.selection
        callbacks: list[Callback] = []
        source_val = self.domains["source_test"].take(EVAL_SUBSET)
        if t.eval_every:

            def evaluate(m: DANN) -> dict[str, float]:
                return {"source_accuracy": accuracy(predict(m, source_val))}

            callbacks.append(EvalCallback(evaluate, t.eval_every, prefix="eval/"))
            if t.collapse_drop is not None:
                target = self.domains["target_train"].take(EVAL_SUBSET, self.recipe.seed)
                guard = collapse_guard(t, source_val, target)
                callbacks.append(guard)
        if selection is not None:
            selector = CheckpointSelector(
                {v: VALIDATORS[v]() for v in VALIDATORS},
                selection.every,
                self.domains["source_test"].take(selection.source_images, self.recipe.seed),
                self.domains["target_train"].take(selection.target_images, self.recipe.seed),
                self.ctx.checkpoint_path(name).with_suffix("") / "selection",
                lambda m: m.evaluated_nets(),
                self.recipe.evaluation.batch_size,
            )
            self.selectors[name] = selector
            callbacks.append(selector)
        return callbacks

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        domains = {**self.domains, "target_test": self.sealed.open()}
        selections = (
            report_selection(self.ctx, self.methods, self.selectors, domains, r.selection.validator)
            if r.selection is not None
            else {}
        )
        return report_dann_methods(
            self.ctx, self.methods, results, domains, r.evaluation, r.seed, selections
        )


def collapse_guard(
    train: DANNTrainConfig, source_val: ImageTensors, target: ImageTensors
) -> CollapseStop:
    """Stop when the collapse validator's score falls by more than ``collapse_drop`` between
    two evaluations, restoring the weights of the previous one.

    The adversarial game can collapse (measured on MNIST -> MNIST-M: class loss at
    chance and every digit one class, 1k steps after reaching 0.72 target accuracy);
    source validation accuracy, the default, shows it without any target label. Any
    validator can stand in (:func:`adapt.validators.collapse_score`; ``target`` is
    unlabeled adaptation data).
    """
    assert train.eval_every is not None and train.collapse_drop is not None
    if train.collapse_validator == "source-accuracy":
        return CollapseStop(
            lambda m: accuracy(predict(m, source_val)),
            train.eval_every,
            drop=train.collapse_drop,
            name=None,  # the evaluation callback logs the same accuracy
            what="source validation accuracy",
        )
    name = train.collapse_validator
    return CollapseStop(
        collapse_score(VALIDATORS[name](), source_val, target.unlabeled()),
        train.eval_every,
        drop=train.collapse_drop,
        name=f"collapse/{name}",
        what=f"the {name} score",
    )
