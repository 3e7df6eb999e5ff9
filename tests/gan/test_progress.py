"""Progress suits its output: a live bar on a terminal, plain lines in a pipe or a file."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

from tqdm.auto import tqdm

from counterfeit.gan.progress import MAX_LINES, BarProgress, make_progress, progress_mode
from tests.conftest import REPO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_bar_a_pipe_or_file_gets_lines():
    assert progress_mode(True, Terminal()) == "bar"
    assert progress_mode(True, io.StringIO()) == "lines"
    closed = io.StringIO()
    closed.close()
    assert progress_mode(True, closed) == "lines"
    assert progress_mode(False, Terminal()) == "off"
    progress = make_progress("bar", total=10, initial=0, description="t", log_every=1)
    assert isinstance(progress, BarProgress) and isinstance(progress.bar, tqdm)
    progress.close()


PIPED_TRAINING = textwrap.dedent(
    """
    import torch
    from counterfeit.gan import EvalCallback, Trainer
    from tests.gan.conftest import Regression, toy_config, toy_data

    torch.manual_seed(0)
    evaluation = EvalCallback(lambda m: {"score": 0.5}, every=100)
    config = toy_config(max_steps=600, log_every=2, checkpoint_every=None, progress=True)
    Trainer(Regression(), toy_data(), config, callbacks=[evaluation], description="toy").fit()
    """
)


def test_a_training_log_on_a_pipe_is_a_few_plain_lines():
    """600 steps logged every 2: no carriage-return frames, about MAX_LINES lines."""
    result = subprocess.run(
        [sys.executable, "-c", PIPED_TRAINING],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "\r" not in result.stdout
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("toy: step ")]
    evaluations = [line for line in lines if line.startswith("[step ")]
    assert MAX_LINES - 1 <= len(progress) <= MAX_LINES + 1
    assert len(evaluations) == 6 and evaluations[0] == "[step 100] eval/score=0.5000"
    assert progress[-1].startswith("toy: step 600/600 (100%)") and "loss=" in progress[-1]
    assert len(lines) == len(progress) + len(evaluations)
