"""Package layout: one import package, ``counterfeit``, whose sub-packages are the
repository's top-level folders (``gan/`` installs as ``counterfeit.gan``, and so on).

Everything else about the distribution lives in ``pyproject.toml``; this file only maps the
folders, finding their sub-packages (and data folders such as ``recipes/builtin``) so a new one
cannot be forgotten.
"""

from setuptools import find_namespace_packages, setup

SUBPACKAGES = ("gan", "adapt", "robust", "recipes")

setup(
    package_dir={"counterfeit": "counterfeit", **{f"counterfeit.{p}": p for p in SUBPACKAGES}},
    packages=[
        "counterfeit",
        *(
            f"counterfeit.{name}"
            for top in SUBPACKAGES
            for name in [top, *(f"{top}.{sub}" for sub in find_namespace_packages(top))]
            if "__pycache__" not in name
        ),
    ],
)
