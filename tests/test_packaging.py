"""The distribution claims one import name, ``counterfeit``, and carries every sub-package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SUBPACKAGES = ("gan", "adapt", "robust", "recipes")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (a build writes build/ beside its sources)."""
    source = tmp_path_factory.mktemp("source")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    for name in listed:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("counterfeit-*.whl")
    return path


def test_wheel_has_one_top_level_package_and_every_subpackage(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"counterfeit"}
    folders = {name.rsplit("/", 1)[0] for name in names}
    for package in SUBPACKAGES:
        source = REPO / "counterfeit" / package
        expected = {
            str(init.parent.relative_to(REPO)).replace("\\", "/")
            for init in source.rglob("__init__.py")
        }
        assert expected <= folders, f"missing from the wheel: {sorted(expected - folders)}"
    assert any(name.startswith("counterfeit/recipes/builtin/") for name in names)


def test_installed_wheel_does_not_claim_generic_names(wheel, tmp_path):
    """In a fresh environment holding only the wheel, `import adapt` fails; the namespace works."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import importlib.util, sys\n"
        "import counterfeit\n"
        "assert counterfeit.__file__.startswith(sys.argv[1]), counterfeit.__file__\n"
        "assert importlib.util.find_spec('counterfeit.adapt') is not None\n"
        "for name in ('adapt', 'robust', 'gan', 'recipes'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
    )
    # -S -E: no site-packages (so not this repository's editable install), no PYTHON* variables.
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-E",
            "-c",
            f"import sys; sys.path[:0] = [sys.argv[1]]\n{probe}",
            site,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
