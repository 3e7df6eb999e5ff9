"""The ``detect`` task (recipe ``digits-detect``): catching counterfeits.

Each generator named in the recipe is trained here at a CPU budget from a built-in GAN
recipe (or read from its checkpoint) and draws fakes for training, validation and test.
For each detector kind (:mod:`counterfeit.robust.counterfeits`: ``cnn`` on the pixels,
``spectrum`` on the log Fourier spectrum) one detector is trained per generator, on real
images against that generator's fakes with Wang et al.'s Blur+JPEG augmentation; its
threshold is set on the validation images. The report gives:

- the generalisation matrix (trained on one generator, tested on every one): AUROC and
  accuracy at the validation threshold, as heat maps;
- the first generator's detectors under post-processing of its test fakes (JPEG, resizing,
  blur): AUROC per level;
- the same detectors under attack, in the format of ``counterfeit robustness``: FGSM and
  PGD on the detector (real and fake test images, the true labels), the counterfeiter
  trying to pass the police.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.markdown import markdown_table
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.generation import GANData, load_data
from counterfeit.robust.counterfeits import (
    FAKE,
    REAL,
    CounterfeitDetection,
    choose_threshold,
    degrade,
    fake_probability,
    generalisation_matrix,
    real_vs_fake,
    score_metrics,
)


class GeneratorSpec(StrictModel):
    """A generator of fakes: a built-in GAN recipe trained here, or a trained checkpoint."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    recipe: str | None = Field(None, description="a GAN recipe trained here")
    settings: list[str] = Field(default_factory=list, description="KEY=VALUE for that recipe")
    checkpoint: Path | None = Field(None, description="or a trained generator's checkpoint")
    translates: Literal["canny", "skeleton"] | None = Field(
        None,
        description="an image-to-image generator (Pix2Pix): its fakes are translations of "
        "these edge maps of the real images (train, validation and test splits alike)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> GeneratorSpec:
        if (self.recipe is None) == (self.checkpoint is None):
            raise ValueError(f"generator '{self.name}' needs one of recipe or checkpoint")
        return self


class DetectorSettings(StrictModel):
    """How the detectors are built and trained (see robust.counterfeits)."""

    kinds: list[Literal["cnn", "spectrum"]] = Field(default_factory=lambda: ["cnn", "spectrum"])
    lr: float = Field(1e-3, gt=0, description="Adam's (Wang et al.: 1e-4 for a pretrained ResNet)")
    augment: float = Field(0.5, ge=0, le=1, description="probability of blur and of JPEG")


class DetectEvaluation(StrictModel):
    """Fakes per split, the post-processing levels, the attacks' budgets."""

    n_train: int = Field(2000, ge=2, description="fakes per generator to train on")
    n_validation: int = Field(500, ge=2, description="fakes per generator to set thresholds")
    n_test: int = Field(1000, ge=2, description="fakes per generator to test on")
    jpeg: list[int] = Field(default_factory=lambda: [90, 70, 50, 30])
    resize: list[float] = Field(default_factory=lambda: [0.75, 0.5])
    blur: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0])
    attacks: list[Literal["fgsm", "pgd"]] = Field(default_factory=lambda: ["fgsm", "pgd"])
    eps: list[float] = Field(default_factory=lambda: [0.01, 0.03, 0.1])


class DetectRecipe(RecipeBase):
    """Train generators, then detectors of their fakes; the generalisation matrix."""

    task: Literal["detect"]
    data: GANData = GANData(pad=2)
    generators: list[GeneratorSpec] = Field(min_length=1)
    detectors: DetectorSettings = DetectorSettings()
    train: TrainConfig
    evaluation: DetectEvaluation = DetectEvaluation()


class DetectTask(Task):
    """Detectors of generated images, one per (kind, generator)."""

    schema = DetectRecipe
    independent = True
    main_only = True  # it trains its generators in nested runs: no data parallelism

    def check(self) -> None:
        super().check()
        names = [g.name for g in self.recipe.generators]
        if len(set(names)) != len(names):
            raise ConfigError(f"generators need distinct names; got {names}.")

    def prepare(self) -> None:
        r, ev = self.recipe, self.recipe.evaluation
        train, test = load_data(r.data)
        self.real_train, real_val = (
            train.subset(idx) for idx in _split(len(train), r.evaluation.n_validation, r.seed)
        )
        self.real_val = real_val.get_batch(torch.arange(len(real_val)))[0]
        test = test.take(ev.n_test, seed=r.seed)
        self.real_test = test.get_batch(torch.arange(len(test)))[0]
        self.fakes: dict[str, dict[str, torch.Tensor]] = {}
        for spec in r.generators:
            self.fakes[spec.name] = self.draw_fakes(spec, train.shape)
        self.ctx.print(
            f"{len(self.fakes)} generators x {len(r.detectors.kinds)} detector kinds; "
            f"{len(self.real_train)} real training images, {len(self.real_test)} real test"
        )

    def draw_fakes(
        self, spec: GeneratorSpec, shape: tuple[int, int, int]
    ) -> dict[str, torch.Tensor]:
        """``spec``'s train / validation / test fakes at the real images' shape: drawn from a
        generator, or translations of the real images of the same split (``translates``)."""
        from counterfeit.recipes.sample import draw_from_checkpoint, translate_with_checkpoint

        ev = self.recipe.evaluation
        checkpoint = spec.checkpoint or self.train_generator(spec)
        counts = [ev.n_train, ev.n_validation, ev.n_test]
        if spec.translates is not None:
            train = self.real_train.take(ev.n_train, seed=self.recipe.seed).as_floats()[0]
            sources = [train, self.real_val[: ev.n_validation], self.real_test[: ev.n_test]]
            sets = translate_with_checkpoint(checkpoint, sources, spec.translates, self.ctx.device)
        else:
            sets = draw_from_checkpoint(
                checkpoint, counts, shape[-1], shape[0], self.recipe.seed, self.ctx.device
            )
        return dict(zip(("train", "validation", "test"), sets))

    def train_generator(self, spec: GeneratorSpec) -> Path:
        """Run ``spec.recipe`` into ``OUT/generators/NAME`` (kept: a resumed run reuses it)."""
        from counterfeit.recipes.loader import load_recipe
        from counterfeit.recipes.run import run_recipe

        out = self.ctx.out / "generators" / spec.name
        if not (out / "summary.json").exists():
            overrides = [*spec.settings, f"seed={self.recipe.seed}", "tracking.enabled=false"]
            loaded = load_recipe(spec.recipe, overrides)
            self.ctx.print(f"training generator '{spec.name}' ({spec.recipe})")
            run_recipe(loaded, out=out, resume=(out / "recipe.yaml").exists())
        found = sorted((out / "checkpoints").glob("*.ckpt"))
        if len(found) != 1:
            raise ConfigError(f"expected one checkpoint in {out / 'checkpoints'}; found {found}.")
        return found[0]

    def method_names(self) -> list[str]:
        return [
            f"{k}-{g.name}" for k in self.recipe.detectors.kinds for g in self.recipe.generators
        ]

    def build(self, name: str) -> TrainingMethod:
        r, d = self.recipe, self.recipe.detectors
        kind = name.split("-", 1)[0]
        channels, size = self.real_train.shape[0], self.real_train.shape[-1]
        return CounterfeitDetection(kind, channels, size, lr=d.lr, augment=d.augment, seed=r.seed)

    def data(self, name: str, method: TrainingMethod) -> Any:
        generator = name.split("-", 1)[1]
        pairs = real_vs_fake(self.real_train, self.fakes[generator]["train"], self.recipe.seed)
        return self.loader(pairs, self.recipe.train.batch_size, self.recipe.seed)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {"train": self.train_records(results)}
        tests = {g: f["test"] for g, f in self.fakes.items()}
        first = r.generators[0].name
        table: list[tuple] = [("detector", "trained on", "mean AUROC on the others", "AUROC (own)")]
        for kind in r.detectors.kinds:
            trained = {
                g: (self.methods[f"{kind}-{g}"].net, self.threshold(kind, g))
                for g in self.fakes
                if f"{kind}-{g}" in self.methods
            }
            matrix = generalisation_matrix(trained, self.real_test, tests)
            details[f"{kind}_matrix"] = matrix
            for g, row in matrix.items():
                for t, values in row.items():
                    metrics.update({f"{kind}/{g}/{t}/{k}": v for k, v in values.items()})
                others = [v["auroc"] for t, v in row.items() if t != g]
                mean = sum(others) / len(others) if others else float("nan")
                table.append((kind, g, f"{mean:.3f}", f"{row[g]['auroc']:.3f}"))
            self.matrix_figure(kind, matrix)
            if first in trained:
                details[f"{kind}_degraded"] = self.degraded(trained[first][0], tests[first])
                self.attacked(kind, trained[first][0], tests[first], metrics)
        self.write_markdown(details)
        return TaskOutput(metrics, details, table)

    def threshold(self, kind: str, generator: str) -> float:
        net = self.methods[f"{kind}-{generator}"].net
        return choose_threshold(
            fake_probability(net, self.real_val),
            fake_probability(net, self.fakes[generator]["validation"]),
        )

    def degraded(self, net: torch.nn.Module, fakes: torch.Tensor) -> dict[str, float]:
        """AUROC after each post-processing level of the test fakes (real ones untouched)."""
        ev, seed = self.recipe.evaluation, self.recipe.seed
        levels = [("jpeg", q) for q in ev.jpeg] + [("resize", f) for f in ev.resize]
        levels += [("blur", s) for s in ev.blur]
        real = fake_probability(net, self.real_test)  # the real images are not degraded
        out = {"clean": score_metrics(real, fake_probability(net, fakes))["auroc"]}
        for kind, level in levels:
            worse = fake_probability(net, degrade(fakes, kind, level, seed))
            out[f"{kind}_{level:g}"] = score_metrics(real, worse)["auroc"]
        return out

    def attacked(self, kind: str, net: torch.nn.Module, fakes: torch.Tensor, metrics: dict) -> None:
        """``counterfeit robustness``'s report of the detector on real and fake test images."""
        from counterfeit.robust.evaluate import evaluate

        ev = self.recipe.evaluation
        images = torch.cat([self.real_test, fakes])
        labels = torch.cat(
            [torch.full((len(self.real_test),), REAL), torch.full((len(fakes),), FAKE)]
        )
        report = evaluate(
            net.eval(), (images, labels), ev.attacks, [0.0, *ev.eps], corruptions=None,
            seed=self.recipe.seed, name=f"{kind} detector", data_name="real and fake test images",
        )  # fmt: skip
        report.save(self.ctx.out / f"robustness-{kind}", self.ctx.tracker, prefix=f"{kind}/")
        metrics.update(report.metrics(prefix=f"{kind}/robust/"))

    def matrix_figure(self, kind: str, matrix: dict) -> None:
        from counterfeit.robust.anomaly.plots import auroc_grid_figure

        grid = {g: {t: v["auroc"] for t, v in row.items()} for g, row in matrix.items()}
        self.ctx.save_figure(
            auroc_grid_figure(grid, xlabel="tested on", ylabel="trained on"),
            f"{kind}_generalisation",
        )

    def write_markdown(self, details: dict[str, Any]) -> None:
        lines = []
        for kind in self.recipe.detectors.kinds:
            matrix = details.get(f"{kind}_matrix", {})
            tested = list(self.fakes)
            lines += [f"## {kind}: AUROC / accuracy, trained on (rows) x tested on (columns)", ""]
            lines += markdown_table(
                ["trained on", *tested],
                [[g, *(f"{row[t]['auroc']:.3f} / {row[t]['accuracy']:.3f}" for t in tested)]
                 for g, row in matrix.items()],
            )  # fmt: skip
            if f"{kind}_degraded" in details:
                degraded = details[f"{kind}_degraded"]
                lines += ["", f"AUROC of the {kind} detector trained on "
                          f"{self.recipe.generators[0].name} after post-processing its test fakes:", ""]  # fmt: skip
                lines += markdown_table(list(degraded), [[f"{v:.3f}" for v in degraded.values()]])
            lines.append("")
        path = self.ctx.out / "detect.md"
        path.write_text("\n".join(lines))
        self.ctx.log_file(path)


def _split(n: int, n_validation: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a training part and a held-out validation part of ``n`` images."""
    if not 2 <= n_validation < n - 1:
        raise ConfigError(
            f"evaluation.n_validation {n_validation}: the real training split has {n} images."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_validation:], order[:n_validation]
