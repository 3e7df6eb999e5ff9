"""A user's own image-caption pairs: ``ROOT/images/`` and ``ROOT/captions.txt``.

``captions.txt`` holds one caption per line, ``FILE<TAB>CAPTION`` with ``FILE`` relative to
``ROOT/images``; an image may have several lines (several captions), blank lines and lines
starting with ``#`` are skipped. Every image needs a caption and every caption an image:
a mismatch is an error naming the file (and line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from counterfeit.gan.data.captions import CaptionedImages
from counterfeit.gan.data.files import find_images, read_image_files
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import DataError


def read_captions(path: Path) -> dict[str, list[str]]:
    """``captions.txt`` as ``file -> captions`` (in file order)."""
    if not path.is_file():
        raise DataError(f"caption file {path} does not exist (lines FILE<TAB>CAPTION).")
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, tab, text = line.partition("\t")
        if not tab or not name.strip() or not text.strip():
            raise DataError(
                f"{path}, line {number}: expected FILE<TAB>CAPTION, got {line.strip()[:60]!r}."
            )
        captions.setdefault(name.strip(), []).append(text.strip())
    if not captions:
        raise DataError(f"caption file {path} holds no captions (lines FILE<TAB>CAPTION).")
    return captions


def load_caption_folder(root: str | Path, size: int, channels: int = 3) -> CaptionedImages:
    """The images of ``root/images`` with their captions from ``root/captions.txt``."""
    root = Path(root).expanduser()
    folder = root / "images"
    if not folder.is_dir():
        raise DataError(f"{root} needs an images/ folder beside captions.txt.")
    captions = read_captions(root / "captions.txt")
    files = find_images(folder, recursive=True)
    names = [f.relative_to(folder).as_posix() for f in files]
    missing = sorted(set(captions) - set(names))
    if missing:
        raise DataError(
            f"{root / 'captions.txt'} captions {len(missing)} image(s) not in {folder}, e.g. "
            f"{missing[0]!r}."
        )
    uncaptioned = sorted(set(names) - set(captions))
    if uncaptioned:
        raise DataError(
            f"{len(uncaptioned)} image(s) in {folder} have no caption in captions.txt, e.g. "
            f"{uncaptioned[0]!r}."
        )
    arrays, _ = read_image_files(files, size, channels)
    images = ImageTensors.from_numpy(np.stack(arrays), None, f"folder:{root.name}")
    return CaptionedImages(images, [captions[name] for name in names])
