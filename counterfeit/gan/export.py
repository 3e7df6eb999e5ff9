"""Exporting trained models as self-contained programs (no Python class needed to load).

:func:`export_classifier` writes a ``torch.export`` program (``.pt2``) with a
dynamic batch dimension. It loads with :func:`load_exported` on any machine
with torch, without our code and without unpickling arbitrary objects.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from counterfeit.gan.errors import CheckpointError
from counterfeit.gan.runtime import model_mode


def export_classifier(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model`` (in eval mode, on CPU) for inputs shaped like ``example``."""
    from torch.export import Dim, export

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    with model_mode(model, False):
        model.cpu()
        try:
            program = export(
                model, (example.cpu(),), dynamic_shapes=({0: Dim("batch", min=1, max=65536)},)
            )
            torch.export.save(program, str(path))
        finally:
            model.to(device)
    return path


class ExportedModule(nn.Module):
    """A loaded ``torch.export`` program as an ordinary ``nn.Module``.

    The program's mode was fixed when it was exported (eval, for
    :func:`export_classifier`), so ``train()``/``eval()`` are accepted and do
    nothing, and ``training`` is always False: code that switches modes (attacks,
    evaluation) works unchanged.
    """

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program
        self.training = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> ExportedModule:
        return self

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-image input shape (C, H, W) the program was exported for, if recorded."""
        for node in self.program.graph.nodes:
            if node.op == "placeholder":
                shape = getattr(node.meta.get("val"), "shape", None)
                if (
                    shape is not None
                    and len(shape) == 4
                    and all(isinstance(d, int) for d in shape[1:])
                ):
                    return tuple(int(d) for d in shape[1:])
                return None
        return None


def load_exported(path: str | Path) -> nn.Module:
    """Load a ``.pt2`` program written by :func:`export_classifier` as an :class:`ExportedModule`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"exported model not found: {path}")
    try:
        with path.open("rb") as file:  # a file object: any name, not only *.pt2
            return ExportedModule(torch.export.load(file).module())
    except Exception as exc:
        raise CheckpointError(
            f"cannot load {path} as a torch.export program: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
