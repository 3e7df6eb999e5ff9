"""Words to ids for caption encoders, and captioned images as batches of token ids."""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

from counterfeit.gan.data.captions import CaptionedImages

PAD, UNKNOWN = "<pad>", "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation dropped."""
    return re.findall(r"[a-z0-9]+", text.lower())


class Vocabulary:
    """The words a text encoder knows: id 0 pads, id 1 stands for any unknown word."""

    def __init__(self, words: Iterable[str]) -> None:
        known = [w for w in dict.fromkeys(words) if w not in (PAD, UNKNOWN)]
        self.words = [PAD, UNKNOWN, *known]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_captions(cls, captions: Iterable[str]) -> Vocabulary:
        """Every word of ``captions``, sorted."""
        return cls(sorted({w for text in captions for w in tokenize(text)}))

    def __len__(self) -> int:
        return len(self.words)

    def unknown_words(self, text: str) -> list[str]:
        return [w for w in tokenize(text) if w not in self.index]

    def encode(self, texts: list[str], length: int) -> torch.Tensor:
        """(len(texts), length) ids, cut or padded with 0."""
        ids = torch.zeros(len(texts), length, dtype=torch.long)
        for row, text in enumerate(texts):
            tokens = [self.index.get(w, 1) for w in tokenize(text)][:length]
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        return ids


class CaptionTokens(Dataset):
    """Captioned images as batches ``(images in [0, 1], token ids (N, P, L), what each caption
    states (N, P, K), what each image shows (N, K))`` (:meth:`CaptionedImages.facts`):
    every image's ``P`` captions, cycled to the most any image has."""

    def __init__(self, data: CaptionedImages, vocabulary: Vocabulary, length: int) -> None:
        per_image = max(len(c) for c in data.captions)
        cycled = [[c[i % len(c)] for i in range(per_image)] for c in data.captions]
        flat = vocabulary.encode([text for row in cycled for text in row], length)
        self.data = data
        self.tokens = flat.view(len(data), per_image, length)
        self.stated, self.shown = data.facts()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(part[0] for part in self.get_batch(torch.tensor([index])))

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        images, _ = self.data.images.get_batch(indices)
        return images, self.tokens[indices], self.stated[indices], self.shown[indices]
