"""counterfeit: synthetic-to-real domain adaptation, robustness and a shared GAN core.

The sub-packages live in the repository's top-level folders and install under this
name (``pyproject.toml`` maps them with setuptools' ``package-dir``)::

    from counterfeit.adapt import DANN          # adapt/    domain adaptation
    from counterfeit.robust import pgd          # robust/   attacks, evaluation, defences
    from counterfeit.gan import Trainer         # gan/      the shared core and the GANs
    from counterfeit.recipes import run_recipe  # recipes/  recipes and the CLI
"""

__version__ = "0.1.0"
