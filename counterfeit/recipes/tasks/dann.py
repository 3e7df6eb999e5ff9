"""The ``dann`` task: DANN and its baselines on one source -> target pair.

Trains every method listed in the recipe (``dann``, ``source-only``,
``target-only``, ``cdan``, ``cdan+e``, ``mcc``, ``mdd``) from the same seed through :class:`gan.Trainer`, then
evaluates the final models (no checkpoint selection on target labels; a
collapse guard, ``train.collapse_drop``, keeps the weights from before a fall
of source validation accuracy and stops): source and target accuracy,
per-class target accuracy, target prediction entropy and domain separability;
plots confusion matrices, a before/after feature embedding and evaluation
curves; exports each classifier with ``torch.export``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from counterfeit.adapt.dann import DANN, Mode
from counterfeit.adapt.evaluate import accuracy, predict
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
    methods: list[Mode] = Field(default_factory=lambda: ["dann", "source-only"], min_length=1)
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _unique_methods(self) -> DANNRecipe:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {self.methods}")
        return self


class DANNTask(Task):
    """DANN and its source-only / train-on-target baselines."""

    schema = DANNRecipe
    recipe: DANNRecipe

    def prepare(self) -> None:
        need = "target-only" in self.recipe.methods
        self.domains = load_domains(self.recipe.data, need_target_labels=need)
        self.ctx.print(describe(self.domains, self.recipe.data))

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
        t = self.recipe.train
        if not t.eval_every:
            return []
        source_val = self.domains["source_test"].take(EVAL_SUBSET)
        target_val = self.domains["target_test"].take(EVAL_SUBSET)

        def evaluate(m: DANN) -> dict[str, float]:
            values = {"source_accuracy": accuracy(predict(m, source_val))}
            if target_val.has_labels:
                values["target_accuracy"] = accuracy(predict(m, target_val))
            return values

        callbacks: list[Callback] = [EvalCallback(evaluate, t.eval_every, prefix="eval/")]
        if t.collapse_drop is not None:
            callbacks.append(collapse_guard(source_val, t.eval_every, t.collapse_drop))
        return callbacks

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        return report_dann_methods(
            self.ctx, self.methods, results, self.domains, r.evaluation, r.seed
        )


def collapse_guard(source_val: ImageTensors, every: int, drop: float) -> CollapseStop:
    """Stop DANN when source validation accuracy falls by more than ``drop`` between checks.

    The adversarial game can collapse (measured on MNIST -> MNIST-M: class loss at
    chance and every digit one class, 1k steps after reaching 0.72 target accuracy);
    source accuracy shows it without any target label. The weights of the previous
    check are restored and training stops.
    """
    return CollapseStop(
        lambda m: accuracy(predict(m, source_val)),
        every,
        drop=drop,
        name=None,  # the evaluation callback logs the same accuracy
        what="source validation accuracy",
    )
