"""Each recipe block that sets a training length is the one its Trainer runs for.

Every block is given a length unlike the others in the same recipe, and the checkpoint
each Trainer writes (its step count) and the summary must show that length.
"""

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.recipes import load_recipe, run_recipe

QUIET = ["device=cpu", "tracking.enabled=false", "train.progress=false"]
SMALL_DOMAINS = [
    "data.source.n=64",
    "data.source.n_test=40",
    "data.target.n=64",
    "data.target.n_test=40",
]


def _step(out, name: str) -> int:
    return load_checkpoint(out / "checkpoints" / f"{name}.ckpt")["step"]


def test_pixelda_trains_for_train_steps_and_its_baselines_for_baselines_steps(tmp_path):
    overrides = [
        *QUIET,
        *SMALL_DOMAINS,
        "model.generator_filters=4",
        "model.generator_blocks=1",
        "model.discriminator_filters=4",
        "train.steps=2",
        "train.batch_size=4",
        "samples_every=2",
        "baselines.methods=[source-only,dann]",
        "baselines.steps=3",
        "baselines.batch_size=4",
        "evaluation.batch_size=64",
    ]
    summary = run_recipe(load_recipe("digits-pixelda", overrides), out=tmp_path)
    assert _step(tmp_path, "pixelda") == 2 and summary["pixelda"]["steps"] == 2
    for method in ("source-only", "dann"):
        assert _step(tmp_path, method) == 3
        assert summary["models"][method]["steps"] == 3


def test_srgan_trains_srresnet_for_train_steps_then_srgan_for_gan_steps(tmp_path):
    overrides = [
        *QUIET,
        "train.steps=2",
        "train.batch_size=4",
        "gan.steps=3",
        "model.blocks=1",
        "model.width=8",
        "model.d_width=4",
        "data.crop_size=32",
        "data.train_photos=[chelsea]",
        "data.test_photos=[coffee]",
        "evaluation.samples_every=null",
        "evaluation.sample_crops=1",
        "evaluation.test_crop=64",
    ]
    summary = run_recipe(load_recipe("photos-srgan", overrides), out=tmp_path)
    assert _step(tmp_path, "srresnet") == 2 and summary["phases"]["srresnet"]["steps"] == 2
    assert _step(tmp_path, "srgan") == 3 and summary["phases"]["srgan"]["steps"] == 3


def test_advgan_trains_its_classifier_for_train_steps_and_itself_for_train_steps(tmp_path, capsys):
    overrides = [
        *QUIET,
        "classifier.train_steps=7",
        "classifier.batch_size=32",
        "data.n_train=200",
        "train.steps=2",
        "train.batch_size=16",
        "evaluation.n=20",
        "evaluation.compare=[fgsm]",
        "evaluation.show=2",
    ]
    summary = run_recipe(load_recipe("digits-advgan", overrides), out=tmp_path)
    assert "trained the digits CNN: 7 steps" in capsys.readouterr().out
    assert _step(tmp_path, "advgan") == 2 and summary["steps"] == 2
