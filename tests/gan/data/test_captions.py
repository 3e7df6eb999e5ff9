"""Captioned digits: the captions say what the renderer drew; a user's pairs fail clearly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from counterfeit.gan.data.caption_folder import load_caption_folder
from counterfeit.gan.data.captions import (
    ATTRIBUTES,
    COLOURS,
    DIGIT_WORDS,
    TEMPLATES,
    describes,
    full_templates,
    render_captioned_digits,
    zero_shot_pairs,
)
from counterfeit.gan.data.vocabulary import CaptionTokens, Vocabulary
from counterfeit.gan.errors import DataError

COLUMN = {name: i for i, name in enumerate(ATTRIBUTES)}


@pytest.fixture(scope="module")
def rendered():
    return render_captioned_digits(240, seed=3)


def _stroke_mask(image: np.ndarray, colour: str) -> np.ndarray:
    """Pixels nearer the named stroke colour than the border's background."""
    background = np.median(np.concatenate([image[0], image[-1]]), 0)
    foreground = np.array(COLOURS[colour])
    return np.linalg.norm(image - foreground, axis=2) < np.linalg.norm(image - background, axis=2)


def test_images_show_the_attributes_their_codes_name(rendered):
    images = rendered.images.images.numpy().transpose(0, 2, 3, 1) / 255.0
    codes = rendered.attributes.numpy()
    slant: dict[int, list[float]] = {}
    area: dict[tuple[str, int], list[float]] = {}
    for image, row in zip(images, codes):
        colour = ATTRIBUTES["colour"][row[COLUMN["colour"]]]
        mask = _stroke_mask(image, colour).astype(np.float32)
        moments = cv2.moments(mask)
        slant.setdefault(row[COLUMN["slant"]], []).append(moments["mu11"] / moments["mu02"])
        area.setdefault(("size", row[COLUMN["size"]]), []).append(mask.sum())
        # the stroke's mean colour is nearer its named colour than any other
        mean = image[mask > 0].mean(0)
        nearest = min(COLOURS, key=lambda c: np.linalg.norm(mean - np.array(COLOURS[c])))
        assert nearest == colour
        luma = float(image[0].mean())  # the top row: background
        dark = ATTRIBUTES["background"][row[COLUMN["background"]]] == "dark"
        assert (luma < 0.3) if dark else (luma > 0.7)
    # image y points down: x growing with y (mu11 > 0) leans the top to the left
    left, upright, right = (np.mean(slant[i]) for i in range(3))
    assert left > 0.3 and abs(upright) < 0.1 and right < -0.3
    assert np.mean(area[("size", 1)]) > 2 * np.mean(area[("size", 0)])


def test_captions_name_the_rendered_values(rendered):
    for captions, row, mentions in zip(rendered.captions, rendered.attributes, rendered.mentions):
        digit, colour = int(row[0]), ATTRIBUTES["colour"][row[1]]
        for text, said in zip(captions, mentions):
            words = text.replace(",", " ").replace(":", " ").split()
            if said[COLUMN["digit"]]:
                assert str(digit) in words or DIGIT_WORDS[digit] in words
            assert (colour in words) == bool(said[COLUMN["colour"]])
            other_colours = set(COLOURS) - {colour}
            assert not other_colours & set(words)


def test_held_out_sentence_shapes_are_unseen_and_name_every_attribute():
    assert not set(TEMPLATES["train"]) & set(TEMPLATES["test"])
    assert full_templates("test") == TEMPLATES["test"]
    test = render_captioned_digits(20, seed=1, phrasing="test")
    assert bool(test.mentions.all())


def test_zero_shot_pairs_are_never_rendered_and_only_them_on_request():
    pairs = zero_shot_pairs(5)
    train = render_captioned_digits(300, seed=0, exclude=pairs)
    colours = ATTRIBUTES["colour"]
    seen = {(int(r[0]), colours[r[1]]) for r in train.attributes}
    assert not seen & set(pairs)
    assert {d for d, _ in seen} == set(range(10)) and {c for _, c in seen} == set(colours)
    only = render_captioned_digits(40, seed=0, only=pairs)
    assert {(int(r[0]), colours[r[1]]) for r in only.attributes} <= set(pairs)
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        render_captioned_digits(4, exclude=[(1, "pink")])


def test_a_caption_describes_the_images_that_show_what_it_states():
    shown = torch.tensor([[3, 1], [3, 2], [4, 1]])
    stated = torch.tensor([[3, -1], [-1, 1], [3, 2]])  # "a 3", "a blue one", "a blue 3"
    expected = torch.tensor(
        [[True, True, False], [True, False, True], [False, True, False]]
    )  # [image, caption]
    assert torch.equal(describes(stated, shown), expected)


def test_the_same_seed_renders_the_same_set_and_tokens_pad_and_flag_unknown_words():
    a, b = render_captioned_digits(6, seed=9), render_captioned_digits(6, seed=9)
    assert torch.equal(a.images.images, b.images.images) and a.captions == b.captions
    vocabulary = Vocabulary.from_captions(["a red 7", "a blue 3"])
    ids = vocabulary.encode(["a red zebra 7"], 6)
    assert ids[0, 2].item() == 1 and ids[0, 4:].tolist() == [0, 0]  # unknown, then padding
    assert vocabulary.unknown_words("A Red zebra!") == ["zebra"]
    batch = CaptionTokens(a, vocabulary, 8).get_batch(torch.tensor([0, 2]))
    assert [tuple(t.shape) for t in batch] == [(2, 3, 32, 32), (2, 5, 8), (2, 5, 6), (2, 6)]


def _write_pairs(root, names, lines):
    (root / "images").mkdir(parents=True)
    for name in names:
        Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(root / "images" / name)
    (root / "captions.txt").write_text(lines)


def test_a_folder_of_pairs_loads_with_several_captions_per_image(tmp_path):
    _write_pairs(
        tmp_path, ["a.png", "b.png"], "a.png\ta red cat\n\n# note\na.png\tred\nb.png\tsky\n"
    )
    pairs = load_caption_folder(tmp_path, 16)
    assert pairs.captions == [["a red cat", "red"], ["sky"]]
    assert pairs.images.shape == (3, 16, 16)
    stated, shown = pairs.facts()
    assert not describes(stated[:, 0], shown)[0, 1]  # b's caption is wrong for a


@pytest.mark.parametrize(
    "names, lines, message",
    [
        (["a.png"], "", "holds no captions"),
        (["a.png"], "# only a comment\n", "holds no captions"),
        (["a.png"], "a.png red cat\n", "line 1: expected FILE<TAB>CAPTION"),
        (["a.png"], "a.png\tcat\nb.png\tdog\n", "not in .*'b.png'"),
        (["a.png", "b.png"], "a.png\tcat\n", "have no caption .*'b.png'"),
    ],
)
def test_bad_caption_folders_name_the_problem(tmp_path, names, lines, message):
    _write_pairs(tmp_path, names, lines)
    with pytest.raises(DataError, match=message):
        load_caption_folder(tmp_path, 16)
