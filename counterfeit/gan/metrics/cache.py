"""counterfeit's cache of trained helpers, and the cached FID-digits classifier in it."""

from __future__ import annotations

import os
from pathlib import Path

from counterfeit.gan.checkpoint import load_checkpoint, load_module_state, save_atomic
from counterfeit.gan.errors import CheckpointError
from counterfeit.gan.metrics.digits_net import DigitsClassifier, train_digits_classifier

CACHE_ENV = "COUNTERFEIT_CACHE"
DIGITS_FORMAT = "counterfeit-fid-digits/2"


def cache_dir() -> Path:
    """Where counterfeit caches trained helpers: ``$COUNTERFEIT_CACHE`` or ``~/.cache/counterfeit``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "counterfeit").expanduser()


def load_digits_classifier(
    directory: str | Path | None = None, verbose: bool = True
) -> tuple[DigitsClassifier, float]:
    """The cached digits classifier (and its test accuracy); trained and cached on first use.

    Args:
        directory: cache folder; default :func:`cache_dir` (``$COUNTERFEIT_CACHE``).
        verbose: say so when training (a few seconds).
    """
    path = Path(directory or cache_dir()) / "fid-digits-v2.pt"
    if path.is_file():
        state = load_checkpoint(path)
        if state.get("format") != DIGITS_FORMAT:
            raise CheckpointError(
                f"{path} is not a counterfeit FID-digits classifier; delete it to retrain."
            )
        model = DigitsClassifier()
        load_module_state(model, state["model"], str(path))
        return model.eval(), float(state["test_accuracy"])
    if verbose:
        print(f"training the FID-digits classifier on embedded MNIST (once; cached at {path})")
    model, accuracy = train_digits_classifier()
    save_atomic(
        {"format": DIGITS_FORMAT, "model": model.state_dict(), "test_accuracy": accuracy}, path
    )
    return model, accuracy
