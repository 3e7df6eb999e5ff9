"""The GAN recipes end to end on tiny settings: files, scores with counts, MLflow, errors."""

import json

import pytest
from mlflow import MlflowClient

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.tasks.common.generation import load_data
from counterfeit.recipes.tasks.gan import DCGANRecipe, InfoGANRecipe

TINY = [
    "train.steps=6",
    "train.batch_size=16",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.eval_every=3",
    "train.progress=false",
    "evaluation.samples_every=3",
    "evaluation.n_samples=60",
    "evaluation.n_real=80",
    "evaluation.kid_subset_size=30",
]


def test_recipes_default_to_the_papers_settings():
    dcgan = load_recipe("mnist-dcgan").recipe
    assert isinstance(dcgan, DCGANRecipe)
    assert (dcgan.model.loss, dcgan.model.latent_dim, dcgan.model.latent) == (
        "non-saturating",
        100,
        "uniform",
    )
    assert (dcgan.data.image_size, dcgan.data.pad, dcgan.data.model_size) == (28, 2, 32)
    wgan = load_recipe("mnist-wgan-gp").recipe
    assert (wgan.model.loss, wgan.model.d_norm, wgan.model.n_critic) == ("wgan-gp", "layer", None)
    info = load_recipe("mnist-infogan").recipe
    assert isinstance(info, InfoGANRecipe)
    m = info.model
    assert (m.noise_dim, m.categorical, m.continuous, m.lr_g, m.lr_d) == (62, [10], 2, 1e-3, 2e-4)


def test_digits_are_padded_to_32_not_resized():
    recipe = load_recipe("mnist-dcgan").recipe
    train, test = load_data(recipe.data)
    assert train.shape == (1, 32, 32) and len(train) == 4000 and len(test) == 1000
    assert train.images[:, :, :2].sum() == 0 and train.images[:, :, :, -2:].sum() == 0
    assert train.images[:, :, 2:30, 2:30].float().mean() > 20  # the digits, untouched


def test_bad_settings_are_errors_that_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.loss"):
        load_recipe("mnist-dcgan", ["model.loss=wgan"])
    with pytest.raises(ConfigError, match=r"evaluation\.n_sample"):
        load_recipe("mnist-infogan", ["evaluation.n_sample=10"])
    with pytest.raises(ConfigError, match="kid_subset_size"):
        load_recipe("mnist-dcgan", ["evaluation.n_samples=100"])
    loaded = load_recipe("mnist-wgan-gp", [*TINY, "model.d_norm=batch", "tracking.enabled=false"])
    with pytest.raises(ConfigError, match="d_norm 'layer'"):
        run_recipe(loaded, out="bad")


def test_dcgan_recipe_end_to_end(tmp_path, mlflow_uri):
    loaded = load_recipe("mnist-dcgan", [*TINY, "model.width=8"])
    summary = run_recipe(loaded, out=tmp_path / "run")
    out = tmp_path / "run"
    metrics = summary["metrics"]
    for name in ("fid-digits", "kid-digits", "is-digits"):
        assert metrics[name] == summary["scores"][name]["value"]
        assert metrics[f"{name}/n_fake"] == 60
    assert metrics["fid-digits/n_real"] == 80 and metrics["real_floor/fid-digits/n_real"] == 80
    assert metrics["real_floor/fid-digits"] < metrics["fid-digits"]  # 6 steps are not digits yet
    assert summary["steps"] == 6 and summary["generator"].startswith("weight average")
    assert 0 <= metrics["precision-digits"] <= 1 and 0 <= metrics["recall-digits"] <= 1
    assert "class_accuracy" not in metrics  # unconditional: no class to read
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {
        "samples.png",
        "interpolation.png",
        "random_samples.png",
        "curve_fid-digits.png",
    } <= plots
    assert {p.name for p in (out / "samples").iterdir()} == {
        f"{grid}_step{step:06d}.png" for grid in ("samples", "interpolation") for step in (3, 6)
    }
    state = load_checkpoint(out / "checkpoints" / "dcgan.ckpt")
    assert state["step"] == 6 and "g_ema.module.net.0.0.weight" in state["method"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["scores"]["fid-digits"]["n_real"] == 80
    client = MlflowClient(tracking_uri=mlflow_uri)
    run_id = summary["mlflow"]["run_id"]
    artifacts = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert "samples/samples_step000003.png" in artifacts
    assert client.get_run(run_id).data.metrics["fid-digits/n_fake"] == 60
    history = client.get_metric_history(run_id, "eval/fid-digits")
    assert [h.step for h in history] == [3]


def test_conditional_dcgan_is_judged_per_class(tmp_path):
    overrides = [*TINY, "model={width: 8, conditional: true}", "evaluation.n_per_class=5"]
    overrides.append("tracking.enabled=false")
    summary = run_recipe(load_recipe("mnist-dcgan", overrides), out=tmp_path / "run")
    accuracy, intra = summary["class_accuracy"], summary["intra_fid_digits"]
    assert len(accuracy["per_class"]) == 10 and len(intra["per_class"]) == 10
    # 5 images per class: every per-class accuracy is a multiple of 1/5
    assert all(abs(a * 5 - round(a * 5)) < 1e-6 for a in accuracy["per_class"])
    assert summary["metrics"]["intra-fid-digits/3"] == intra["per_class"][3]
    assert intra["n_real_per_class"] == [
        int((load_data(load_recipe("mnist-dcgan", overrides).recipe.data)[1].take(80, seed=0)
             .labels == c).sum())
        for c in range(10)
    ]  # fmt: skip


def test_infogan_recipe_reports_cluster_accuracy(tmp_path):
    overrides = [
        *TINY,
        "data.domain.name=sklearn-digits",
        "data.image_size=8",
        "tracking.enabled=false",
        "model.q_ema_decay=0.9",
    ]
    summary = run_recipe(load_recipe("mnist-infogan", overrides), out=tmp_path / "info")
    metrics = summary["metrics"]
    assert summary["cluster_accuracy"]["n_images"] == 80
    for key in ("cluster_accuracy", "last_iterate_cluster_accuracy"):
        # a fraction of the 80 labelled images, and at least one cluster's worth of them
        assert metrics[key] * 80 == pytest.approx(round(metrics[key] * 80), abs=1e-4), key
        assert metrics[key] >= 8 / 80, key
    assert summary["cluster_accuracy"]["labelled_by"] == "D/Q weight average"
    assert metrics["fid-digits/n_fake"] == 60
    plots = {p.name for p in (tmp_path / "info" / "plots").iterdir()}
    assert {"traversal_categorical0.png", "traversal_continuous0.png", "samples.png"} <= plots
    assert 1.0 <= metrics["is-digits"] <= 10.0


def test_progan_recipe_grows_to_full_size_with_a_grid_per_phase(tmp_path, mlflow_uri):
    overrides = [
        *TINY,
        "train.steps=9",
        "evaluation.samples_every=null",
        "model={latent_dim: 8, fmap_base: 16, fmap_max: 4, fade_images: 16, stable_images: 16}",
        "baseline={width: 4}",
    ]
    summary = run_recipe(load_recipe("mnist-progan", overrides), out=tmp_path / "run")
    assert summary["baseline"]["model"] == "DCGAN" and summary["baseline"]["steps"] == 9
    assert "baseline/precision-digits" in summary["metrics"]
    assert summary["growth"] == {
        "final_size": 32,
        "final_alpha": 1.0,
        "images_seen": 144,
        "images_to_full_size": 112,
    }
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert grids == [
        "phase0_4px_stable.png",
        "phase1_8px_fade.png",
        "phase2_8px_stable.png",
        "phase3_16px_fade.png",
        "phase4_16px_stable.png",
        "phase5_32px_fade.png",
        "phase6_32px_stable.png",
    ]
    assert summary["metrics"]["fid-digits/n_fake"] == 60
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["mlflow"]["run_id"])
    logged = {a.path for a in MlflowClient(mlflow_uri).list_artifacts(run.info.run_id, "samples")}
    assert "samples/phase3_16px_fade.png" in logged
    with pytest.raises(ConfigError, match=r"raise train\.steps to at least 7"):
        run_recipe(load_recipe("mnist-progan", [*overrides, "train.steps=4"]), out=tmp_path / "x")


def test_biggan_recipe_reports_class_accuracy_and_draws_each_class(tmp_path, mlflow_uri):
    overrides = [
        *TINY,
        "model={width: 2, latent_dim: 16, shared_dim: 8}",
        "evaluation.n_per_class=6",
        "evaluation.truncation_curve=[1.0, 0.5]",
        "baseline={width: 4, conditional: true, loss: hinge}",
    ]
    summary = run_recipe(load_recipe("mnist-biggan", overrides), out=tmp_path / "run")
    # the conditional DCGAN baseline: the same images seen, judged the same way
    base = summary["baseline"]
    assert base["model"] == "conditional DCGAN" and base["steps"] == summary["steps"] == 6
    assert len(base["class_accuracy"]["per_class"]) == 10
    assert summary["metrics"]["baseline/fid-digits/n_fake"] == 60
    assert summary["metrics"]["baseline/fid-digits"] != summary["metrics"]["fid-digits"]
    assert "baseline/truncation/0.5/fid-digits" not in summary["metrics"]  # BigGAN's only
    curve = summary["truncation_curve"]
    assert list(curve) == ["0.5", "1", "none"]
    assert curve["0.5"]["fid-digits"] == summary["metrics"]["truncation/0.5/fid-digits"]
    assert curve["0.5"]["fid-digits"] != curve["none"]["fid-digits"]
    assert {"precision-digits", "recall-digits", "is-digits"} <= set(curve["1"])
    intra = summary["intra_fid_digits"]
    assert len(intra["per_class"]) == 10 and intra["n_fake_per_class"] == 6
    assert summary["metrics"]["intra-fid-digits"] == pytest.approx(sum(intra["per_class"]) / 10)
    accuracy = summary["class_accuracy"]
    assert len(accuracy["per_class"]) == 10
    assert accuracy["overall"] == pytest.approx(sum(accuracy["per_class"]) / 10)
    assert summary["metrics"]["class_accuracy/3"] == accuracy["per_class"][3]
    assert summary["metrics"]["fid-digits/n_fake"] == 60
    assert (
        0 <= summary["metrics"]["precision-digits"] <= 1 and "recall-digits" in summary["metrics"]
    )
    plots = {p.name for p in (tmp_path / "run" / "plots").iterdir()}
    assert {"samples.png", "truncated.png", "random_samples.png", "truncation_curve.png"} <= plots
    assert {"dcgan-baseline_samples.png", "dcgan-baseline_random_samples.png"} <= plots
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "biggan.ckpt")
    assert state["step"] == 6 and state["method_init"]["d_steps"] == 2
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["class_accuracy"] == pytest.approx(accuracy["overall"])
    # the baseline's curves are its own, not mixed into BigGAN's
    run_id = summary["mlflow"]["run_id"]
    assert [h.step for h in client.get_metric_history(run_id, "eval/fid-digits")] == [3]
    assert [
        h.step for h in client.get_metric_history(run_id, "dcgan-baseline/eval/fid-digits")
    ] == [3]
