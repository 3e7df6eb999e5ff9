"""Robustness: attacks, adversarial training and robustness reports (see issue tracker)."""
