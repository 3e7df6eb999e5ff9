"""Label-free selection: the sealed test set, the checkpoint selector and its resume, the
choice and the report, and a recipe whose choice cannot depend on the test labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from counterfeit.adapt import DANN
from counterfeit.adapt.selection import (
    Candidate,
    CheckpointSelector,
    SealedTestSet,
    load_candidate,
    rank_correlations,
    select,
    selection_summary,
)
from counterfeit.adapt.validators import build_validator
from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import InfiniteLoader, ZipLoader
from counterfeit.gan.data.tensors import UNLABELED, ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.loader import load_recipe
from counterfeit.recipes.run import run_recipe
from tests.conftest import TINY_DANN


def _digits(n: int, seed: int) -> ImageTensors:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
    return ImageTensors(images, torch.arange(n) % 10, f"noise{seed}")


def test_the_sealed_test_set_shows_images_without_labels_and_opens_once():
    dataset = _digits(20, 0)
    sealed = SealedTestSet(dataset)
    assert bool((sealed.unlabeled.labels == UNLABELED).all()) and len(sealed) == 20
    assert torch.equal(sealed.unlabeled.images, dataset.images)
    assert torch.equal(sealed.open().labels, dataset.labels)
    with pytest.raises(RuntimeError, match="already opened"):
        sealed.open()


def _candidates(scores: list[float]) -> list[Candidate]:
    return [Candidate(10 * (i + 1), f"step{i}", {"snd": s}) for i, s in enumerate(scores)]


def test_select_ships_the_highest_score_later_on_a_tie_and_never_a_nan():
    assert select(_candidates([0.1, 0.5, 0.3]), "snd").step == 20
    assert select(_candidates([0.5, 0.2, 0.5]), "snd").step == 30
    assert select(_candidates([math.nan, 0.2, 0.1]), "snd").step == 20
    with pytest.raises(ConfigError, match="validator 'dev' was not recorded"):
        select(_candidates([0.1]), "dev")
    with pytest.raises(ConfigError, match="no checkpoint"):
        select([], "snd")


def test_the_summary_sets_the_choice_beside_the_final_and_the_oracle_checkpoint():
    candidates = _candidates([0.1, 0.5, 0.3, 0.2])
    accuracies = {10: 0.6, 20: 0.7, 30: 0.9, 40: 0.8}
    summary = selection_summary(candidates, accuracies, "snd")
    assert (summary["selected_step"], summary["selected_target_accuracy"]) == (20, 0.7)
    assert (summary["final_step"], summary["final_target_accuracy"]) == (40, 0.8)
    assert (summary["oracle_step"], summary["oracle_target_accuracy"]) == (30, 0.9)
    assert [c["step"] for c in summary["checkpoints"]] == [10, 20, 30, 40]


def test_rank_correlations_are_spearmans_rho_per_validator():
    checkpoints = [
        {"scores": {"up": s, "down": -s, "flat": 1.0}, "target_accuracy": a}
        for s, a in [(0.1, 0.5), (0.2, 0.55), (0.4, 0.9), (0.3, 0.6)]
    ]
    rho = rank_correlations(checkpoints)
    assert rho["up"] == pytest.approx(1.0) and rho["down"] == pytest.approx(-1.0)
    assert math.isnan(rho["flat"])
    assert rank_correlations(checkpoints[:2]) == {}


def _train(steps: int, directory: Path, checkpoint: Path, resume: bool) -> CheckpointSelector:
    torch.manual_seed(0)
    source, target = _digits(64, 1), _digits(64, 2)
    model = DANN((1, 28, 28), mode="cdan+e", lr_schedule="constant")
    selector = CheckpointSelector(
        {name: build_validator(name) for name in ("source-accuracy", "entropy", "snd")},
        every=4,
        source_val=_digits(32, 3),
        target=target,  # labelled here: the selector strips the labels itself
        directory=directory,
        nets=lambda m: m.evaluated_nets(),
    )
    assert bool((selector.target.labels == UNLABELED).all())
    data = ZipLoader(
        InfiniteLoader(source, 8, seed=0), InfiniteLoader(target.unlabeled(), 8, seed=1)
    )
    config = TrainerConfig(
        max_steps=steps, progress=False, device="cpu", log_every=4, checkpoint_every=4
    )
    Trainer(model, data, config, callbacks=[selector], checkpoint_path=checkpoint).fit(
        resume=resume
    )
    return selector


def test_the_selector_keeps_scored_checkpoints_and_a_resume_keeps_the_same_ones(tmp_path):
    whole = _train(10, tmp_path / "a", tmp_path / "a.ckpt", resume=False)
    assert [c.step for c in whole.candidates] == [4, 8, 10]  # every 4 steps, and the end
    assert set(whole.candidates[0].scores) == {"source-accuracy", "entropy", "snd"}
    _train(6, tmp_path / "b", tmp_path / "b.ckpt", resume=False)  # a run cut short at 6
    resumed = _train(10, tmp_path / "b", tmp_path / "b.ckpt", resume=True)
    assert [c.step for c in resumed.candidates] == [4, 8, 10]
    for a, b in zip(whole.candidates, resumed.candidates, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-5)

    # a kept checkpoint restores the model it scored
    model = DANN((1, 28, 28), mode="cdan+e")
    load_candidate(model, whole.candidates[0])
    again = whole.scores(model)
    assert again == pytest.approx(whole.candidates[0].scores, rel=1e-5)


def _write_folder(root: Path, dataset: ImageTensors, label_of) -> None:
    for i, (image, label) in enumerate(zip(dataset.images, dataset.labels, strict=True)):
        folder = root / str(label_of(int(label)))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0].numpy()).save(folder / f"{i:04d}.png")


def _sealed_run(tmp_path: Path, name: str, relabel) -> dict:
    """digits-dann on a target folder whose test images carry labels ``relabel(y)``."""
    from counterfeit.gan.data import embedded

    target = tmp_path / name
    _write_folder(target / "train", embedded.sklearn_digits("train").take(150), lambda y: y)
    _write_folder(target / "test", embedded.sklearn_digits("test").take(80), relabel)
    overrides = [
        *TINY_DANN,
        "train.steps=24",
        "train.eval_every=null",
        "methods=[dann]",
        "evaluation.embedding=none",
        "data.target.name=image-folder",
        f"data.target.path={target}",
        "selection.every=8",
        "selection.validator=snd",
        "tracking.enabled=false",
    ]
    return run_recipe(load_recipe("digits-dann", overrides), out=tmp_path / f"out-{name}")


def test_the_shipped_checkpoint_cannot_depend_on_the_target_test_labels(tmp_path):
    true = _sealed_run(tmp_path, "true", lambda y: y)
    shuffled = _sealed_run(tmp_path, "shuffled", lambda y: (y + 3) % 10)
    a, b = (s["models"]["dann"]["selection"] for s in (true, shuffled))
    assert a["selected_step"] == b["selected_step"]
    assert [c["scores"] for c in a["checkpoints"]] == [c["scores"] for c in b["checkpoints"]]
    # the report did read the (different) test labels, once, after the choice
    assert [c["target_accuracy"] for c in a["checkpoints"]] != [
        c["target_accuracy"] for c in b["checkpoints"]
    ]
    metrics = true["metrics"]
    assert metrics["dann/target_accuracy"] == a["selected_target_accuracy"]
    assert metrics["dann/oracle_target_accuracy"] >= metrics["dann/target_accuracy"]
    assert (tmp_path / "out-true" / "plots" / "validators.png").is_file()


def test_recipes_refuse_an_unknown_validator():
    with pytest.raises(Exception, match="unknown validator 'oracle'"):
        load_recipe("digits-dann", ["selection.validator=oracle"])
