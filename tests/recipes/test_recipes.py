"""Recipes: every built-in validates; bad recipes give errors that name the key and file."""

import pytest

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.recipes.loader import (
    apply_overrides,
    builtin_recipes,
    describe_builtin,
    load_recipe,
)
from counterfeit.recipes.tasks.dann import DANNRecipe


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_validates(name):
    loaded = load_recipe(name)
    assert loaded.recipe.name == name
    assert loaded.recipe.description


def test_builtins_include_the_promised_ones():
    names = set(builtin_recipes())
    assert {
        "digits-dann",
        "mnist-mnistm-dann",
        "mnist-mnistm-source-only",
        "mnist-mnistm-oracle",
    } <= names
    assert all(description for _, _, description in describe_builtin())


def test_digits_dann_defaults_are_the_papers_where_they_can_be():
    recipe = load_recipe("digits-dann").recipe
    assert isinstance(recipe, DANNRecipe)
    assert recipe.model.backbone == "ganin-mnist"
    assert (
        recipe.model.lr,
        recipe.model.momentum,
        recipe.model.alpha,
        recipe.model.beta,
        recipe.model.gamma,
    ) == (0.01, 0.9, 10.0, 0.75, 10.0)
    assert recipe.methods == ["dann", "source-only"]
    assert load_recipe("mnist-mnistm-dann").recipe.train.batch_size == 64


def test_overrides_are_parsed_as_yaml():
    recipe = load_recipe(
        "digits-dann", ["train.steps=7", "model.lr=0.5", "methods=[dann]", "train.progress=false"]
    ).recipe
    assert (recipe.train.steps, recipe.model.lr, recipe.methods, recipe.train.progress) == (
        7,
        0.5,
        ["dann"],
        False,
    )


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\ntask: dann\ndata: {source: {name: mnist-small}, target: {name: mnistm-style}}\n"
        "train: {steps: 3, stpes: 4}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_recipe(str(path))
    message = str(info.value)
    assert str(path) in message and "train.stpes: unknown key" in message
    assert "did you mean 'train.steps'" in message


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train\.steps: .*integer.*'many'"):
        load_recipe("digits-dann", ["train.steps=many"])


def test_unknown_method_and_domain_option():
    with pytest.raises(ConfigError, match=r"methods\.0"):
        load_recipe("digits-dann", ["methods=[dan]"])
    with pytest.raises(ConfigError, match=r"data\.source\.style\.rotaton: unknown key"):
        load_recipe("digits-dann", ["data.source.style.rotaton=3"])


def test_unknown_recipe_lists_known_and_suggests():
    with pytest.raises(
        ConfigError, match=r"unknown recipe 'digits-dan'.*Did you mean 'digits-dann'"
    ):
        load_recipe("digits-dan")
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe("nowhere/r.yaml")


def test_bad_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntask: dann\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line \d+"):
        load_recipe(str(path))


def test_missing_and_unknown_task(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: x\n")
    with pytest.raises(ConfigError, match="missing key 'task'"):
        load_recipe(str(path))
    path.write_text("name: x\ntask: teleport\n")
    with pytest.raises(ConfigError, match="unknown task 'teleport'"):
        load_recipe(str(path))


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.steps"])
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_bad_device_is_rejected():
    with pytest.raises(ConfigError, match="device"):
        load_recipe("digits-dann", ["device=tpu"])


def test_file_backed_recipe_without_root_names_the_setting(tmp_path):
    from counterfeit.recipes.tasks.common.adaptation import load_domains

    recipe = load_recipe("mnist-mnistm-dann").recipe
    with pytest.raises(DataError, match=r"data\.root"):
        load_domains(recipe.data)
    recipe = load_recipe("mnist-mnistm-dann", [f"data.root={tmp_path}"]).recipe
    with pytest.raises(DataError, match=r"MNIST not found under .*mnist\.npz"):
        load_domains(recipe.data)


def test_dann_collapse_guard_is_on_by_default_and_validated():
    assert load_recipe("mnist-mnistm-dann").recipe.train.collapse_drop == 0.2
    off = load_recipe("digits-dann", ["train.collapse_drop=null"]).recipe
    assert off.train.collapse_drop is None
    with pytest.raises(ConfigError, match=r"train\.collapse_drop"):
        load_recipe("digits-dann", ["train.collapse_drop=0"])


@pytest.mark.parametrize(
    "name", ["mnist-mnistm-dann", "mnist-mnistm-source-only", "mnist-mnistm-oracle"]
)
def test_mnistm_recipes_keep_both_domains_digits_at_one_scale(tmp_path, random_digits_npz, name):
    """MNIST-M's 32 px images are MNIST digits padded by 2: the recipes crop or pad
    (never resize), so each domain's pixels reach the network unchanged in scale."""
    import numpy as np
    import torch

    from counterfeit.gan.data.tensors import center_fit_uint8
    from counterfeit.recipes.tasks.common.adaptation import load_domains

    random_digits_npz(tmp_path / "mnist.npz", (28, 28), 12, 6)
    random_digits_npz(tmp_path / "mnistm.npz", (32, 32, 3), 12, 6)
    recipe = load_recipe(name, [f"data.root={tmp_path}"]).recipe
    domains = load_domains(recipe.data, need_target_labels=True)
    size = recipe.data.image_size
    for side, file in (("source", "mnist.npz"), ("target", "mnistm.npz")):
        pixels = torch.from_numpy(np.load(tmp_path / file)["x_test"])
        pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
        expected = center_fit_uint8(pixels.expand(-1, 3, -1, -1), size)
        assert torch.equal(domains[f"{side}_test"].images, expected), side
