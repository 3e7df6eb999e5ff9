"""How much of each caption attribute a trained text encoder's embedding carries.

A linear probe (logistic regression) per attribute, trained on the embeddings of rendered
captions in the training sentence shapes and tested on fresh images captioned in the
held-out shapes, each only on captions that state the attribute. If the probe reads an
attribute perfectly while the text-to-image GAN does not draw it, the GAN, not the encoder,
is what misses it (Reed et al., ICML 2016, condition G and D on these embeddings).

Usage::

    python benchmarks/text2image_probe.py --checkpoint RUN/checkpoints/text-encoder.ckpt
"""

from __future__ import annotations

import argparse

import torch
from sklearn.linear_model import LogisticRegression

from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.data.captions import (
    ATTRIBUTES,
    CaptionedImages,
    render_captioned_digits,
    zero_shot_pairs,
)
from counterfeit.gan.models import JointEmbedding


def embedded(encoder: JointEmbedding, data: CaptionedImages) -> tuple[torch.Tensor, ...]:
    """The first caption's embedding per image, the image's attributes, and which the
    caption states."""
    with torch.no_grad():
        texts = encoder.embed_texts([row[0] for row in data.captions])
    return texts, data.attributes, data.mentions[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a text-encoder.ckpt")
    parser.add_argument("--train", type=int, default=3000, help="captions to fit the probes")
    parser.add_argument("--test", type=int, default=1000, help="held-out-shape captions")
    parser.add_argument("--zero-shot", type=int, default=5, help="as the recipe's data.zero_shot")
    args = parser.parse_args()
    encoder = load_method(args.checkpoint, {"JointEmbedding": JointEmbedding}, "a text encoder")
    encoder.eval()
    held_out = zero_shot_pairs(args.zero_shot)
    train = render_captioned_digits(args.train, size=32, seed=5, exclude=held_out)
    test = render_captioned_digits(args.test, size=32, seed=6, phrasing="test", exclude=held_out)
    (x_train, a_train, m_train), (x_test, a_test, m_test) = (
        embedded(encoder, train),
        embedded(encoder, test),
    )
    print("| attribute | probe accuracy (held-out shapes) | captions stating it |")
    print("| --- | --- | --- |")
    for k, name in enumerate(ATTRIBUTES):
        fit_rows, test_rows = m_train[:, k].bool(), m_test[:, k].bool()
        probe = LogisticRegression(max_iter=2000).fit(x_train[fit_rows], a_train[fit_rows, k])
        score = probe.score(x_test[test_rows], a_test[test_rows, k])
        print(f"| {name} | {score:.3f} | {int(test_rows.sum())} |")


if __name__ == "__main__":
    main()
