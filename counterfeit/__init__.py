"""counterfeit: synthetic-to-real domain adaptation, robustness and a shared GAN core.

One import name, four sub-packages::

    from counterfeit.adapt import DANN          # domain adaptation
    from counterfeit.robust import pgd          # attacks, evaluation, defences
    from counterfeit.gan import Trainer         # the shared core and the GANs
    from counterfeit.recipes import run_recipe  # recipes and the CLI
"""

__version__ = "0.1.0"
