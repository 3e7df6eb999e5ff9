"""The GAN core's quickstart notebooks (05 on) run top to bottom (on tiny settings)."""

import pytest

from tests.notebook_kernel import GAN, assert_ran_cleanly, execute

pytestmark = pytest.mark.slow  # its file runs first: see conftest


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, list]:
    return execute(GAN, tmp_path_factory.mktemp("notebooks"))


@pytest.mark.parametrize("name", GAN)
def test_notebook_executes(name, executed):
    assert_ran_cleanly(executed[name])
