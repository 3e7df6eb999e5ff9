"""Run quickstart notebooks top to bottom in one Jupyter kernel (on tiny settings).

The notebooks of one test file run in one kernel, one after the other, each after
``%reset -f``: a notebook finds none of the previous one's names (each must import and
define what it uses), while the modules they share (torch, matplotlib, counterfeit) are
imported once instead of once per notebook. The notebooks are split over two test files
so that two pytest workers share them.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
ADAPT_AND_ROBUST = [
    "01_quickstart_dann.ipynb",
    "02_pixelda.ipynb",
    "03_robustness.ipynb",
    "04_adversarial_patch.ipynb",
]
# every other notebook (the GAN core's, and any new one)
GAN = [p.name for p in NOTEBOOKS if p.name not in ADAPT_AND_ROBUST]
TINY = {
    "COUNTERFEIT_NOTEBOOK_STEPS": "5",
    "COUNTERFEIT_NOTEBOOK_IMAGES": "200",
    "COUNTERFEIT_NOTEBOOK_POINTS": "60",
}
RESET = "%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')"


def execute(names: list[str], workdir: Path) -> dict[str, list]:
    """The executed code cells of the notebooks ``names``, by file name, from one kernel
    started in ``workdir``."""
    combined = nbformat.v4.new_notebook()
    spans: dict[str, tuple[int, int]] = {}
    for path in (p for p in NOTEBOOKS if p.name in names):
        combined.cells.append(nbformat.v4.new_code_cell(RESET))
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        spans[path.name] = (len(combined.cells), len(combined.cells) + len(cells))
        combined.cells.extend(cells)
    NotebookClient(
        combined,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    ).execute(env={**os.environ, **TINY})
    return {name: combined.cells[start:end] for name, (start, end) in spans.items()}


def assert_ran_cleanly(cells: list) -> None:
    """No cell raised; the notebook reported its training steps and showed three figures."""
    outputs = [o for cell in cells for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "steps" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # e.g. the domain grid, the confusion matrix, the embedding
