"""The quickstart notebooks of DANN, PixelDA, robustness and the patch run top to bottom (on tiny settings)."""

import pytest

from tests.notebook_kernel import ADAPT_AND_ROBUST, assert_ran_cleanly, execute

pytestmark = pytest.mark.slow  # its file runs first: see conftest


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, list]:
    return execute(ADAPT_AND_ROBUST, tmp_path_factory.mktemp("notebooks"))


@pytest.mark.parametrize("name", ADAPT_AND_ROBUST)
def test_notebook_executes(name, executed):
    assert_ran_cleanly(executed[name])
