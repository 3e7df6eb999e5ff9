"""The loop every task shares, split in small named steps.

A task is a :class:`Task` subclass that names its ``schema`` (the recipe it runs)
and fills in the steps it needs. ``run_recipe`` calls :meth:`Task.check` before anything
is written, then :meth:`Task.run` calls the others in order::

    check()                          the inputs (what it loads, later steps reuse)
    prepare()                        load the data, say what will be trained
    for name in method_names():      each method from the same seed:
        seed(name); build(name)          a fresh method
        fit(name, method)                train it (resuming where its checkpoint exists)
    report(results)                  rank 0 only: evaluate, export, plot, summarise

A task overrides only the steps that differ, as in Lightning Fabric's "build your
own trainer" (a loop of small named steps): ``data`` and ``callbacks`` feed the
:class:`~gan.train.Trainer`, ``train_config`` names the recipe block a method
trains by, ``seed`` says how each method starts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch.utils.data import Dataset

from counterfeit.gan.callbacks import Callback
from counterfeit.gan.data.loaders import BatchTransform, InfiniteLoader
from counterfeit.gan.errors import NonFiniteLossError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.runtime import seed_everything
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.inputs import check_inputs
from counterfeit.recipes.schema import RecipeBase, TrainConfig


class Task:
    """One recipe task: prepare, per method seed -> build -> fit, then report on rank 0.

    Class attributes:
        schema: the recipe model this task runs.
        main_only: the whole task runs on rank 0 (other ranks return at once).
        scoped: metrics go to MLflow under ``NAME/`` (False: unprefixed; see :meth:`scoped_name`).
        model_files: dotted recipe keys of the saved models the task loads, checked by
            :meth:`check`.
        independent: the methods are compared side by side and need nothing from each
            other, so one that diverges (a NaN loss) is reported as such and the others
            still train and are evaluated; otherwise a divergence ends the run.
    """

    schema: ClassVar[type[RecipeBase]]
    main_only: ClassVar[bool] = False
    scoped: ClassVar[bool] = True
    model_files: ClassVar[tuple[str, ...]] = ()
    independent: ClassVar[bool] = False

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.recipe: Any = ctx.recipe
        self.methods: dict[str, TrainingMethod] = {}
        self.diverged: dict[str, str] = {}

    def run(self) -> TaskOutput:
        """Prepare, train every method, and (rank 0) report."""
        if self.main_only and not self.ctx.dist.is_main:
            return TaskOutput({})
        self.prepare()
        results = self.train()
        if not self.ctx.dist.is_main:
            return TaskOutput({})
        output = self.report(results)
        if self.diverged:
            output.details["diverged"] = dict(self.diverged)
        return output

    # -- the steps a task fills in ------------------------------------------------------

    def check(self) -> None:
        """Cheap checks of the inputs, before an output folder or an MLflow run exists.

        By default every path the recipe names exists (data roots, image folders, weights)
        and every :attr:`model_files` entry is a model file counterfeit reads. A task adds
        what only loading tells (a model refusing the data's shape, an unreadable image),
        keeping what it loaded for the later steps, and writes nothing.
        """
        check_inputs(self.recipe, self.model_files)

    def prepare(self) -> None:
        """Load the data and say what will be trained (every rank)."""

    def method_names(self) -> list[str]:
        """The methods to train, in order (each also names its checkpoint)."""
        return []

    def build(self, name: str) -> TrainingMethod:
        """A fresh method ``name``, built just after :meth:`seed`."""
        raise NotImplementedError(f"{type(self).__name__} trains methods but builds none")

    def data(self, name: str, method: TrainingMethod) -> Any:
        """The batch stream ``name`` trains on."""
        raise NotImplementedError(f"{type(self).__name__} trains methods but gives no data")

    def callbacks(self, name: str, method: TrainingMethod, data: Any) -> list[Callback]:
        """Evaluation and sample hooks while ``name`` trains."""
        return []

    def train_config(self, name: str) -> TrainConfig:
        """The recipe block whose length and cadence ``name`` trains by."""
        return self.recipe.train

    def scoped_name(self, name: str) -> bool:
        """Whether ``name``'s training metrics go to MLflow under ``NAME/`` (:attr:`scoped`)."""
        return self.scoped

    def seed(self, name: str) -> None:
        """Seed the process before ``name`` is built: every method starts alike."""
        seed_everything(self.recipe.seed)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """Evaluate, export and plot the trained methods (rank 0)."""
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------------

    def train(self) -> dict[str, TrainResult]:
        """Seed, build and fit each of :meth:`method_names` in turn (see :attr:`independent`
        for a method that diverges)."""
        results: dict[str, TrainResult] = {}
        for name in self.method_names():
            self.seed(name)
            self.methods[name] = self.build(name)
            try:
                results[name] = self.fit(name, self.methods[name])
            except NonFiniteLossError as exc:
                if not self.independent or len(self.method_names()) == 1:
                    raise
                del self.methods[name]
                self.diverged[name] = str(exc)
                self.ctx.print(f"warning: {name} diverged; it is left out of the report: {exc}")
                if len(self.diverged) == len(self.method_names()):
                    raise
        return results

    def fit(self, name: str, method: TrainingMethod) -> TrainResult:
        """Train ``method`` through the Trainer, continuing its checkpoint when resuming."""
        data = self.data(name, method)
        callbacks = self.callbacks(name, method, data)
        trainer = self.ctx.trainer(
            method,
            data,
            name,
            train=self.train_config(name),
            callbacks=callbacks,
            scoped=self.scoped_name(name),
        )
        result = trainer.fit(resume=self.ctx.resumes(name))
        if result.stopped_early:
            self.ctx.print(f"{name}: stopped early: {result.stopped_early}")
        return result

    # -- helpers ------------------------------------------------------------------------

    def loader(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        transform: BatchTransform | None = None,
    ) -> InfiniteLoader:
        """An endless batch stream of ``dataset``, this process's shard of it."""
        return InfiniteLoader(
            dataset,
            batch_size,
            seed=seed,
            transform=transform,
            rank=self.ctx.dist.rank,
            world_size=self.ctx.dist.world_size,
        )

    def train_records(self, results: dict[str, TrainResult]) -> dict[str, dict[str, Any]]:
        """:meth:`RunContext.train_record` of every trained method, by name."""
        return {name: self.ctx.train_record(name, result) for name, result in results.items()}
