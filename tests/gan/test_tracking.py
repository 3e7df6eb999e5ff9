"""Tracking errors a user can cause; a dead server's buffering and replay is tested against a
real server in tests/recipes/test_mlflow_server.py."""

from __future__ import annotations

import time

import pytest

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import Tracker


def test_a_store_under_a_file_fails_at_once_naming_it(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="not-a-folder"):
        Tracker(uri=f"sqlite:///{blocker}/mlflow.db").start()
    assert time.perf_counter() - started < 10
