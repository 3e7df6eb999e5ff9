"""The ``ood`` task (recipe ``digits-ood``): which inputs a classifier should not trust, and
whether an anomaly detector fitted on its training data flags them.

The classifier is a saved one (``classifier.path``) or Wong et al.'s digits CNN trained
here. Each detector of ``methods`` (:mod:`counterfeit.robust.anomaly`) is fitted on the
classifier's training images (every class: normal is "like the training data"), its
threshold set on held-out training images at ``evaluation.false_alarm``. Then ``n`` clean
test images are compared with the same images shifted: FGSM and PGD adversarial examples
(Goodfellow et al. 2015; Madry et al. 2018) at each eps, an adversarial patch (Brown et
al. 2017) trained toward ``shifts.patch_target``, each common corruption (Hendrycks &
Dietterich 2019) at ``shifts.severity``, and the test images of other domains. For each
shift: the classifier's accuracy, and per detector the AUROC of shifted (positive) against
clean and the share flagged at the threshold. Writes ``ood.md``, ``plots/ood_auroc.png``
and ``plots/shift_examples.png``; metrics ``accuracy/SHIFT`` and ``METHOD/auroc/SHIFT``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.markdown import markdown_table
from counterfeit.recipes.schema import AttackData, AttackedModelConfig, RecipeBase, StrictModel
from counterfeit.recipes.tasks.common.attacks import AttackedModelTask, correct
from counterfeit.robust.anomaly import (
    AnomalyDetector,
    build_detector,
    detection_scores,
    hold_out,
)
from counterfeit.robust.attacks import fgsm, pgd
from counterfeit.robust.corruptions import corrupt, resolve_corruptions
from counterfeit.robust.patch import AdversarialPatch


class ShiftConfig(StrictModel):
    """The shifted inputs compared with clean test images."""

    fgsm: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], description="L-inf eps")
    pgd: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], description="L-inf eps")
    pgd_steps: int = Field(10, gt=0)
    patch_target: int | None = Field(3, ge=0, description="null: no patch")
    patch_area: float = Field(0.15, gt=0, lt=1)
    patch_steps: int = Field(200, gt=0)
    corruptions: Literal["all", "none"] | list[str] = "all"
    severity: int = Field(3, ge=1, le=5)
    domains: list[DomainSpec] = Field(
        default_factory=lambda: [DomainSpec(name="mnistm-style")],
        description="other domains' test images, at the data's size and channels",
    )


class OODEvaluation(StrictModel):
    n: int = Field(500, gt=0, description="clean test images, and as many of each shift")
    false_alarm: float = Field(0.05, gt=0, lt=1)
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    batch_size: int = Field(256, gt=0)


class OODRecipe(RecipeBase):
    """Shifted inputs against a classifier and the detectors fitted on its training data."""

    task: Literal["ood"]
    data: AttackData = Field(default_factory=AttackData)
    classifier: AttackedModelConfig = Field(default_factory=AttackedModelConfig)
    produced_by: str | None = None
    methods: list[str] = Field(min_length=1)
    detectors: dict[str, dict] = Field(default_factory=dict)
    shifts: ShiftConfig = Field(default_factory=ShiftConfig)
    evaluation: OODEvaluation = Field(default_factory=OODEvaluation)


class OODTask(AttackedModelTask):
    """Build the shifts, fit the detectors, and tabulate who flags what."""

    schema = OODRecipe
    recipe: OODRecipe
    main_only = True

    def check(self) -> None:
        super().check()
        for method in self.recipe.methods:
            build_detector(method, **self.recipe.detectors.get(method, {}))
        resolve_corruptions(self.recipe.shifts.corruptions)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r, ctx = self.recipe, self.ctx
        order = torch.randperm(len(self.test), generator=torch.Generator().manual_seed(r.seed))
        x, y = self.test.get_batch(order[: r.evaluation.n])
        shifts = self.shifts(x, y)
        accuracy = {
            name: self.accuracy(images, labels) for name, (images, labels) in shifts.items()
        }
        auroc: dict[str, dict[str, float]] = {}
        flagged: dict[str, dict[str, float]] = {}
        for method in r.methods:
            detector = self.detector(method)
            scores = {name: detector.score(images) for name, (images, _) in shifts.items()}
            assert detector.threshold is not None
            flagged[method] = {
                name: float((s > detector.threshold).float().mean()) for name, s in scores.items()
            }
            auroc[method] = {
                name: detection_scores(scores["clean"], s)["auroc"]
                for name, s in scores.items()
                if name != "clean"
            }
            ctx.print(f"{method}: " + ", ".join(f"{k} {v:.3f}" for k, v in auroc[method].items()))
        self.figures(shifts, auroc)
        header = ["shift", "classifier accuracy"]
        header += [f"{m} {what}" for m in r.methods for what in ("AUROC", "flagged")]
        rows = [
            [
                name,
                f"{accuracy[name]:.3f}",
                *(
                    value
                    for m in r.methods
                    for value in (
                        f"{auroc[m][name]:.3f}" if name in auroc[m] else "-",
                        f"{flagged[m][name]:.3f}",
                    )
                ),
            ]
            for name in shifts
        ]
        (ctx.out / "ood.md").write_text("\n".join(markdown_table(header, rows)) + "\n")
        ctx.log_file(ctx.out / "ood.md")
        metrics = {f"accuracy/{name}": value for name, value in accuracy.items()}
        metrics.update(
            {f"{m}/auroc/{k}": v for m, table in auroc.items() for k, v in table.items()}
        )
        details = {"accuracy": accuracy, "auroc": auroc, "flagged": flagged}
        return TaskOutput(metrics, details, [tuple(header), *map(tuple, rows)])

    def shifts(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Shift name -> (images, labels): clean, the attacks, the patch, corruptions, domains."""
        s, r, model = self.recipe.shifts, self.recipe, self.model
        device, batch = self.ctx.device, self.recipe.evaluation.batch_size
        out = {"clean": (x, y)}

        def attacked(attack) -> torch.Tensor:
            parts = [
                attack(xb.to(device), yb.to(device)).cpu()
                for xb, yb in zip(x.split(batch), y.split(batch))
            ]
            return torch.cat(parts)

        for eps in s.fgsm:
            out[f"fgsm_{eps:g}"] = (attacked(lambda xb, yb, e=eps: fgsm(model, xb, yb, e)), y)
        for eps in s.pgd:
            out[f"pgd_{eps:g}"] = (
                attacked(lambda xb, yb, e=eps: pgd(model, xb, yb, e, steps=s.pgd_steps)),
                y,
            )
        if s.patch_target is not None:
            patch = AdversarialPatch(
                model, s.patch_target, area=s.patch_area, steps=s.patch_steps, seed=r.seed,
                device=device, progress=False,
            )  # fmt: skip
            patch.fit(self.train_set)
            generator = torch.Generator(device=device).manual_seed(r.seed)
            pasted = patch.apply(x.to(device), generator=generator)
            assert isinstance(pasted, torch.Tensor)
            out["patch"] = (pasted.detach().cpu(), y)
        for name in resolve_corruptions(s.corruptions):
            out[name] = (corrupt(x, name, s.severity, seed=r.seed), y)
        channels, size = x.shape[1], x.shape[-1]
        for spec in s.domains:
            domain = build_domain(spec, "test", size, channels)
            pick = torch.randperm(len(domain), generator=torch.Generator().manual_seed(r.seed))
            out[spec.name] = domain.get_batch(pick[: len(x)])
        return out

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        device, batch = self.ctx.device, self.recipe.evaluation.batch_size
        return float(
            correct(self.model, images.to(device), labels.to(device), batch).float().mean()
        )

    def detector(self, method: str) -> AnomalyDetector:
        """``method`` fitted on the classifier's training images, calibrated on held-out ones."""
        r, ctx = self.recipe, self.ctx
        images = self.train_set.as_floats()[0]
        fit_images, held_out = hold_out(images, r.evaluation.validation_fraction, r.seed)
        settings = r.detectors.get(method, {})
        detector = build_detector(method, r.seed, str(ctx.device), **settings)
        torch.manual_seed(r.seed)
        detector.fit(fit_images)
        detector.calibrate(held_out, r.evaluation.false_alarm)
        path = detector.save(ctx.out / "detectors" / f"{method}.pt")
        ctx.log_file(path, "detectors")
        return detector

    def figures(self, shifts: dict, auroc: dict[str, dict[str, float]]) -> None:
        """AUROC per shift and detector (bars), and one example image of each shift."""
        from counterfeit.gan.plots import labelled_grid_figure
        from counterfeit.robust.anomaly.plots import shift_auroc_figure

        self.ctx.save_figure(shift_auroc_figure(auroc), "ood_auroc")
        names = list(shifts)
        examples = torch.stack([shifts[name][0][0] for name in names])
        self.ctx.save_figure(labelled_grid_figure(examples, names), "shift_examples")
