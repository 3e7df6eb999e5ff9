"""The quickstart notebooks run top to bottom (on tiny settings).

All of them run in one Jupyter kernel, one after the other, each after ``%reset -f``: a
notebook finds none of the previous one's names (each must import and define what it
uses), while the modules they share (torch, matplotlib, counterfeit) are imported once
instead of once per notebook.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # its file runs first: see conftest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TINY = {
    "COUNTERFEIT_NOTEBOOK_STEPS": "5",
    "COUNTERFEIT_NOTEBOOK_IMAGES": "200",
    "COUNTERFEIT_NOTEBOOK_POINTS": "60",
}
RESET = "%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')"


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, list]:
    """Every notebook's executed code cells, by file name, from one kernel."""
    combined = nbformat.v4.new_notebook()
    spans: dict[str, tuple[int, int]] = {}
    for path in NOTEBOOKS:
        combined.cells.append(nbformat.v4.new_code_cell(RESET))
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        spans[path.name] = (len(combined.cells), len(combined.cells) + len(cells))
        combined.cells.extend(cells)
    env = {**os.environ, **TINY}
    NotebookClient(
        combined,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebooks"))}},
    ).execute(env=env)
    return {name: combined.cells[start:end] for name, (start, end) in spans.items()}


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_executes(name, executed):
    outputs = [o for cell in executed[name] for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "steps" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # e.g. the domain grid, the confusion matrix, the embedding
