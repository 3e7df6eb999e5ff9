"""An independent, plain-PyTorch DANN on MNIST -> MNIST-M, to cross-check the product.

    python benchmarks/dann_reference.py --data-root ../shared/datasets --out A.json
    python benchmarks/dann_reference.py --data-root DIR --paper-updates   # Eqs. 13-15
    python benchmarks/dann_reference.py --data-root DIR --size 32         # MNIST-M at 32 px
    python benchmarks/dann_reference.py --data-root DIR --crop            # crop MNIST-M, no resize
    python benchmarks/dann_reference.py --data-root DIR --per-domain-norm --source-only
    python benchmarks/dann_reference.py --data-root DIR --no-center --softmax-domain
    python benchmarks/dann_reference.py --data-root DIR --crop --domain-mean --average 0.99 0.999

Nothing here imports counterfeit: data loading, the Ganin et al. (JMLR 2016, Fig. 4a)
network, the gradient reversal, the schedules and the loop are written out in one
file, so that a gap between `counterfeit run mnist-mnistm-dann` and the paper can be
split into "our code" and "choices the paper leaves open". Each flag is one such
choice; docs/archive/benchmarks-notebook.md records what each gave. Prints target accuracy on the
full MNIST-M test set every 1,000 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad, None


def load(args) -> dict[str, torch.Tensor]:
    """MNIST (grey, repeated to RGB) and MNIST-M in [0, 1] at ``args.size`` px."""
    mnist = np.load(args.data_root / "mnist.npz")
    mnistm = np.load(args.data_root / "mnistm.npz")

    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == args.size:
            return x
        if args.crop:  # crop or zero-pad around the centre: the digits keep their scale
            margin = (x.shape[-1] - args.size) // 2
            if margin > 0:
                return x[..., margin : margin + args.size, margin : margin + args.size]
            return F.pad(x, (-margin,) * 4)
        return F.interpolate(x, size=(args.size, args.size), mode="bilinear", antialias=True)

    source = torch.tensor(mnist["x_train"]).float().div(255)
    if args.binarize:
        source = (source > 0).float()
    source = resize(source[:, None].expand(-1, 3, -1, -1).contiguous())

    def target(x: np.ndarray) -> torch.Tensor:
        return resize(torch.tensor(x).permute(0, 3, 1, 2).float().div(255))

    data = {
        "xs": source,
        "ys": torch.tensor(mnist["y_train"]).long(),
        "xt": target(mnistm["x_train"]),
        "xt_test": target(mnistm["x_test"]),
        "yt_test": torch.tensor(mnistm["y_test"]).long(),
    }
    if args.per_domain_norm:  # each domain by its own per-channel mean and std
        for key, stats in (("xs", "xs"), ("xt", "xt"), ("xt_test", "xt")):
            mean = data[stats].mean((0, 2, 3), keepdim=True)
            std = data[stats].std((0, 2, 3), keepdim=True)
            data[key] = (data[key] - mean) / std * args.scale
        return data
    if args.no_center:  # raw [0, 1] pixels, as ToTensor() gives them
        return data
    mean = torch.cat([data["xs"], data["xt"]]).mean((0, 2, 3)).view(1, 3, 1, 1)
    for key in ("xs", "xt", "xt_test"):
        data[key] = (data[key] - mean) * args.scale
    return data


def networks(size: int, domain_outputs: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    features = nn.Sequential(
        nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    )  # fmt: skip
    n = 48 * (((size - 4) // 2 - 4) // 2) ** 2
    label = nn.Sequential(
        nn.Linear(n, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
    )
    domain = nn.Sequential(nn.Linear(n, 100), nn.ReLU(), nn.Linear(100, domain_outputs))
    return features, label, domain


def batches(n: int, size: int, seed: int) -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield order[start : start + size]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64, help="per domain")
    parser.add_argument("--size", type=int, default=28, help="image size (MNIST-M is 32)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply mean-free inputs")
    parser.add_argument("--binarize", action="store_true", help="MNIST pixels > 0 -> 1")
    parser.add_argument(
        "--paper-updates",
        action="store_true",
        help="Eqs. 13-15: the domain classifier's step is also scaled by lambda",
    )
    parser.add_argument(
        "--domain-mean",
        action="store_true",
        help="domain loss as one mean over source + target (half of Eq. 18's sum of means)",
    )
    parser.add_argument(
        "--per-domain-norm",
        action="store_true",
        help="normalise each domain by its own per-channel mean and std",
    )
    parser.add_argument("--no-center", action="store_true", help="raw [0, 1] inputs")
    parser.add_argument(
        "--crop",
        action="store_true",
        help="crop MNIST-M (pad MNIST) to --size instead of resizing: MNIST-M's 32 px "
        "images are MNIST digits padded by 2, so this keeps both at the same scale",
    )
    parser.add_argument(
        "--softmax-domain",
        action="store_true",
        help="two-logit softmax domain head with cross-entropy (tf-dann) instead of one logit",
    )
    parser.add_argument(
        "--source-only", action="store_true", help="no domain loss (the source-only baseline)"
    )
    parser.add_argument(
        "--average",
        type=float,
        nargs="+",
        default=[],
        metavar="DECAY",
        help="also evaluate exponential moving averages of the classifier's weights",
    )
    parser.add_argument("--out", type=Path, help="write the log as JSON")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    data = load(args)
    features, label, domain = networks(args.size, 2 if args.softmax_domain else 1)
    params = [*features.parameters(), *label.parameters(), *domain.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    source_batches = batches(len(data["xs"]), args.batch, args.seed)
    target_batches = batches(len(data["xt"]), args.batch, args.seed + 1)
    domain_labels = torch.cat([torch.zeros(args.batch), torch.ones(args.batch)])
    classifier = nn.Sequential(features, label)
    averages = {
        decay: AveragedModel(classifier, multi_avg_fn=get_ema_multi_avg_fn(decay))
        for decay in args.average
    }

    def target_accuracy(model: nn.Module) -> float:
        model.eval()
        with torch.no_grad():
            x, y = data["xt_test"], data["yt_test"]
            pred = torch.cat([model(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
        model.train()
        return (pred == y).float().mean().item()

    log, domain_hits, start = [], [], time.time()
    for step in range(args.steps):
        p = step / args.steps
        lambda_ = 2 / (1 + math.exp(-10 * p)) - 1
        for group in optimizer.param_groups:
            group["lr"] = 0.01 / (1 + 10 * p) ** 0.75
        i, j = next(source_batches), next(target_batches)
        f = features(torch.cat([data["xs"][i], data["xt"][j]]))
        class_loss = F.cross_entropy(label(f[: args.batch]), data["ys"][i])
        reversal = 1.0 if args.paper_updates else lambda_
        d = domain(ReverseGradient.apply(f, reversal))
        # two logits: their difference is the same model with twice the head's step
        d = d[:, 1] - d[:, 0] if args.softmax_domain else d.squeeze(1)
        domain_loss = F.binary_cross_entropy_with_logits(
            d[: args.batch], domain_labels[: args.batch]
        ) + F.binary_cross_entropy_with_logits(d[args.batch :], domain_labels[args.batch :])
        weight = (lambda_ if args.paper_updates else 1.0) * (0.5 if args.domain_mean else 1.0)
        weight *= 0.0 if args.source_only else 1.0
        optimizer.zero_grad()
        (class_loss + weight * domain_loss).backward()
        optimizer.step()
        for average in averages.values():
            average.update_parameters(classifier)
        domain_hits.append(((d > 0).float() == domain_labels).float().mean().item())
        if (step + 1) % 1000 == 0:
            log.append(
                dict(
                    step=step + 1,
                    target_accuracy=target_accuracy(classifier),
                    **{f"average_{d}": target_accuracy(a) for d, a in averages.items()},
                    train_domain_accuracy=float(np.mean(domain_hits[-1000:])),
                    seconds=round(time.time() - start, 1),
                )
            )
            print(json.dumps(log[-1]), flush=True)
    if args.out:
        args.out.write_text(
            json.dumps(
                dict(
                    args=vars(args) | {"data_root": str(args.data_root), "out": str(args.out)},
                    log=log,
                ),
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
