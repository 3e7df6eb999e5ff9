"""The GAN core against the papers, and the Trainer's speed on a DCGAN step.

    python benchmarks/gans.py --data-root ../shared/datasets                  # everything
    python benchmarks/gans.py --data-root DIR --only infogan --markdown docs/results.md

Parts:
  infogan   InfoGAN (the paper's MNIST nets and settings) on full MNIST through the
            mnist-infogan recipe; its 10-way categorical code read as a cluster label and
            matched to the digit labels (Hungarian matching) on the 10,000 test digits.
            Chen et al. 2016 report about 0.95 (5% error); the target here is >= 0.90.
  dcgan     DCGAN on full MNIST (zero-padded 28 -> 32 px) through the mnist-dcgan recipe;
            FID-digits of the trained and of an untrained generator beside the real-vs-real
            floor (two disjoint halves of the MNIST test set), equal sample counts throughout.
  speed     images/s of a DCGAN step through gan.Trainer vs a hand-written PyTorch loop of the
            same nets, losses, optimizers and EMA on the same data stream, in the same process
            (interleaved rounds); target ratio >= 0.95.
  infogan-seeds  the infogan part's recipe over --seeds as a sweep (``counterfeit sweep``: a
            process per seed, --workers at once, --resume finishes it): cluster accuracy and
            FID-digits as mean +- sd (n). Not in the default parts (each seed is ~45 CPU minutes).

Each part prints a Markdown table; ``--markdown`` appends them to a file and
``--images`` copies the sample grids there (docs/images by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import run_parts, trainer_overhead, trainer_seconds

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.data import DomainSpec, InfiniteLoader, build_domain
from counterfeit.gan.metrics import DigitsFeatures, GenerativeScores, generate_images
from counterfeit.gan.models import DCGAN
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.sweep import sweep
from counterfeit.recipes.tasks.common.generation import pad_images
from counterfeit.recipes.tasks.gan import build_dcgan, build_infogan

PAPER_CLUSTER_ACCURACY = 0.95


def run(name: str, overrides: list[str], out: Path, resume: bool) -> tuple[dict, object]:
    """Run a built-in recipe through the product; returns its summary and validated recipe."""
    loaded = load_recipe(name, [*overrides, "tracking.enabled=false"])
    return run_recipe(loaded, out=out, resume=resume, overwrite=not resume), loaded.recipe


def copy_images(args, out: Path, names: dict[str, str]) -> list[str]:
    """Copy plots from a run to --images; returns Markdown image lines."""
    lines = []
    if args.images is None:
        return lines
    args.images.mkdir(parents=True, exist_ok=True)
    for source, (target, caption) in names.items():
        shutil.copy(out / "plots" / source, args.images / target)
        lines.append(f"![{caption}](images/{target})")
    return lines


def infogan_overrides(args) -> list[str]:
    """The mnist-infogan recipe on full MNIST at the benchmark's settings (no seed)."""
    return [
        "data.domain.name=mnist",
        f"data.root={args.data_root}",
        f"train.steps={args.infogan_steps}",
        f"train.batch_size={args.infogan_batch}",
        f"model.g_batch={args.infogan_g_batch}",
        f"model.continuous_weight={args.infogan_continuous_weight}",
        f"model.leak={args.infogan_leak}",
        f"model.q_ema_decay={args.infogan_q_ema or 'null'}",
        f"train.eval_every={args.infogan_eval_every}",
        f"train.checkpoint_every={args.infogan_eval_every}",
        "evaluation.n_samples=5000",
        "evaluation.kid_subset_size=1000",
        f"evaluation.samples_every={args.infogan_steps}",
    ]


def infogan_seeds_part(args) -> str:
    """The infogan part's recipe over ``--seeds`` as a sweep: cluster accuracy mean +- sd."""
    result = sweep(
        "mnist-infogan",
        seeds=args.seeds,
        overrides=infogan_overrides(args),
        workers=args.workers,
        out=args.out / "infogan-sweep",
        resume=args.resume,
        headline="cluster_accuracy",
    )
    finished = [m for m in result.members if m.status == "finished"]
    if not finished:
        raise SystemExit(f"no member of {result.out} finished; see its sweep.json")
    metrics = result.aggregate[0]["metrics"]
    rows = [
        f"| {label} | {describe_cell(metrics[key])} |"
        for key, label in (
            ("cluster_accuracy", "cluster accuracy (c1 vs digit label, Hungarian)"),
            ("fid-digits", "FID-digits"),
        )
        if key in metrics
    ]
    per_seed = ", ".join(f"{m.seed}: {m.metrics['cluster_accuracy']:.3f}" for m in finished)
    return (
        f"### InfoGAN on full MNIST over seeds {args.seeds} ({args.infogan_steps} steps of batch "
        f"{args.infogan_batch}; `counterfeit sweep`, {len(finished)} of {len(result.members)} "
        "members finished)\n\n| | mean +- sd (n; min to max) |\n| --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nPer seed: {per_seed}. Chen et al. 2016: ~{PAPER_CLUSTER_ACCURACY} (one number; "
        "how many runs it was chosen from is not stated).\n"
    )


def describe_cell(stats: dict) -> str:
    sd = f" +- {stats['sd']:.3f}" if stats["sd"] is not None else ""
    return f"{stats['mean']:.3f}{sd} (n = {stats['n']}; {stats['min']:.3f} to {stats['max']:.3f})"


def infogan_part(args) -> str:
    out = args.out / "infogan"
    summary, recipe = run(
        "mnist-infogan", [*infogan_overrides(args), f"seed={args.seed}"], out, args.resume
    )
    m = summary["metrics"]
    acc = m["cluster_accuracy"]
    curve = [
        (step, values["eval/cluster_accuracy"], values.get("eval/last_iterate_cluster_accuracy"))
        for step, values in _evaluations(out)
        if "eval/cluster_accuracy" in values
    ]
    last = m.get("last_iterate_cluster_accuracy")
    labelled = (
        f"D/Q weight average, decay {args.infogan_q_ema:g}; last iterate {last:.4f}"
        if last is not None
        else "last iterate"
    )
    images = copy_images(
        args,
        out,
        {
            "traversal_categorical0.png": (
                "gans_infogan_categorical.png",
                "InfoGAN: varying the categorical code c1 (columns); rows keep their noise",
            ),
            "traversal_continuous0.png": ("gans_infogan_c2.png", "InfoGAN: c2 from -2 to 2"),
            "traversal_continuous1.png": ("gans_infogan_c3.png", "InfoGAN: c3 from -2 to 2"),
        },
    )
    steps = summary["steps"]
    epochs = steps * args.infogan_batch / 60000
    confusion = _confusion(recipe, out, args.data_root)
    return (
        f"### InfoGAN on full MNIST: categorical code as a cluster label ({steps} steps of batch "
        f"{args.infogan_batch} = {epochs:.1f} epochs, seed {args.seed})\n\n"
        "| | ours | Chen et al. 2016 |\n| --- | --- | --- |\n"
        f"| cluster accuracy, c1 vs digit label (Hungarian), {summary['cluster_accuracy']['n_images']} test digits, "
        f"labelled by Q of the {labelled} | **{acc:.4f}** | ~{PAPER_CLUSTER_ACCURACY} (5% error) |\n"
        f"| FID-digits of samples ({m['fid-digits/n_fake']} generated vs {m['fid-digits/n_real']} real) "
        f"| {m['fid-digits']:.2f} (real-vs-real floor {m['real_floor/fid-digits']:.2f}) | - |\n"
        f"| IS-digits ({m['is-digits/n_fake']} generated) | {m['is-digits']:.2f} "
        f"(real {m['real_floor/is-digits']:.2f}) | - |\n"
        f"| train time | {summary['train_seconds']:.0f} s ({summary['steps_per_second']:.2f} steps/s) | |\n\n"
        "Cluster accuracy during training: "
        + ", ".join(
            f"{s}: {a:.3f}" + (f" (last iterate {li:.3f})" if li is not None else "")
            for s, a, li in curve
        )
        + f"\n\nTarget >= 0.90: **{'met' if acc >= 0.90 else 'not met'}**.\n\n"
        + "Test digits per category of c1 (rows) and digit label (columns):\n\n"
        + confusion
        + "\n\n"
        + "\n\n".join(images)
        + "\n"
    )


def _confusion(recipe, out: Path, data_root: Path) -> str:
    """Markdown table: test digits per category of the final model's c1 and digit label."""
    model = build_infogan(recipe)
    model.load_state_dict(load_checkpoint(out / "checkpoints" / "infogan.ckpt")["method"])
    test = build_domain(DomainSpec(name="mnist", root=data_root), "test", 28, 1)
    images, labels = test.get_batch(torch.arange(len(test)))
    counts = torch.zeros(10, 10, dtype=torch.long)
    counts.index_put_((model.predict_categorical(images), labels), torch.tensor(1), accumulate=True)
    rows = ["| c1 \\ digit | " + " | ".join(map(str, range(10))) + " |", "|---" * 11 + "|"]
    rows += [f"| {k} | " + " | ".join(str(int(v)) for v in counts[k]) + " |" for k in range(10)]
    return "\n".join(rows)


def _evaluations(out: Path) -> list[tuple[int, dict[str, float]]]:
    """The evaluations the run made during training (its summary's ``history``)."""
    history = json.loads((out / "summary.json").read_text())["history"]
    return [(h["step"], h["values"]) for h in history]


def dcgan_part(args) -> str:
    out = args.out / "dcgan"
    summary, recipe = run(
        "mnist-dcgan",
        [
            "data.domain.name=mnist",
            f"data.root={args.data_root}",
            f"train.steps={args.dcgan_steps}",
            f"model.width={args.dcgan_width}",
            f"train.eval_every={args.dcgan_steps // 4}",
            f"train.checkpoint_every={args.dcgan_steps // 4}",
            "evaluation.n_samples=5000",
            "evaluation.kid_subset_size=1000",
            f"evaluation.samples_every={args.dcgan_steps}",
            f"seed={args.seed}",
        ],
        out,
        args.resume,
    )
    test = build_domain(DomainSpec(name="mnist", root=args.data_root), "test", 28, 1)
    images = pad_images(test, 2).get_batch(torch.randperm(len(test), generator=_g(args.seed)))[0]
    half = len(images) // 2
    real_a, real_b = images[:half], images[half:]
    scores = GenerativeScores(DigitsFeatures(), real_a, kid_subset_size=1000, seed=args.seed)
    trained = build_dcgan(recipe, 10)
    state = load_checkpoint(out / "checkpoints" / "dcgan.ckpt")
    trained.load_state_dict(state["method"])
    torch.manual_seed(args.seed)
    untrained = build_dcgan(recipe, 10)
    rows = {
        "real vs real (disjoint test halves)": scores(real_b),
        "trained DCGAN (EMA generator)": scores(_samples(trained, half, args.seed)),
        "trained DCGAN (last iterate)": scores(_samples(trained, half, args.seed, ema=False)),
        "untrained DCGAN": scores(_samples(untrained, half, args.seed)),
    }
    table = "| images | FID-digits | KID-digits | IS-digits | n (scored / reference) |\n| --- | --- | --- | --- | --- |\n"
    for name, (fid, kid, inception) in rows.items():
        table += (
            f"| {name} | {fid.value:.2f} | {kid.value:.3f} +- {kid.std:.3f} | "
            f"{inception.value:.2f} | {fid.n_fake} / {fid.n_real} |\n"
        )
    grids = copy_images(
        args,
        out,
        {
            "samples.png": (
                "gans_dcgan_samples.png",
                "DCGAN samples from fixed noise (EMA generator)",
            ),
            "interpolation.png": (
                "gans_dcgan_interpolation.png",
                "DCGAN: linear walks between two latent vectors per row",
            ),
        },
    )
    steps = summary["steps"]
    return (
        f"### DCGAN on full MNIST, padded to 32 px ({steps} steps of batch "
        f"{recipe.train.batch_size}, width {args.dcgan_width}, seed {args.seed})\n\n"
        f"{table}\nFID-digits: features of the cached digits classifier ({rows['untrained DCGAN'][0].features}); "
        "not comparable with Inception FIDs. "
        f"Train time {summary['train_seconds']:.0f} s ({summary['steps_per_second']:.2f} steps/s).\n\n"
        + "\n\n".join(grids)
        + "\n"
    )


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _samples(model: DCGAN, n: int, seed: int, ema: bool = True) -> torch.Tensor:
    model.eval()
    return generate_images(lambda k, g: model.sample(k, generator=g, ema=ema), n, 500, seed)


def plain_loop(model: DCGAN, data, steps: int) -> float:
    """The same DCGAN step written out by hand: no Trainer, no StepContext."""
    g, d, ema = model.generator, model.discriminator, model.g_ema.module
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        real, _ = next(data)
        z = torch.rand(real.shape[0], 100) * 2 - 1
        fake = g(z)
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        g_loss = F.softplus(-d(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(g.parameters()), 1 - decay)
            for mine, theirs in zip(ema.buffers(), g.buffers()):
                mine.copy_(theirs)
    return time.perf_counter() - start


def speed_part(args) -> str:
    train = pad_images(build_domain(DomainSpec(name="mnist-small"), "train", 28, 1), 2)
    batch, steps = 64, args.speed_steps

    def time_round(round_: int) -> tuple[float, float]:
        torch.manual_seed(round_)
        model = DCGAN(32, 1, width=args.dcgan_width)
        t_plain = plain_loop(model, InfiniteLoader(train, batch, seed=round_), steps)
        torch.manual_seed(round_)
        model = DCGAN(32, 1, width=args.dcgan_width)
        return t_plain, trainer_seconds(model, InfiniteLoader(train, batch, seed=round_), steps)

    return trainer_overhead(
        f"DCGAN step (32 px, width {args.dcgan_width}, batch {batch}, EMA), {steps} steps",
        args.speed_rounds,
        steps * batch,
        time_round,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-root", type=Path, help="folder with mnist.npz (or torchvision's MNIST)"
    )
    parser.add_argument(
        "--only", choices=["infogan", "infogan-seeds", "dcgan", "speed"], action="append"
    )
    parser.add_argument(
        "--infogan-steps",
        type=int,
        default=10000,
        help="10,000 x batch 64 = the authors' 640,000 images (50 epochs x 100 x 128)",
    )
    parser.add_argument("--infogan-batch", type=int, default=64)
    parser.add_argument(
        "--infogan-g-batch",
        choices=["reuse", "fresh"],
        default="reuse",
        help="the G step's latent batch: the D step's (default) or a fresh draw (the authors')",
    )
    parser.add_argument(
        "--infogan-continuous-weight",
        type=float,
        default=1.0,
        help="weight of the continuous codes' NLL in L_I: 1 (the authors' code) or smaller "
        "(the paper's advice for continuous codes, Sec. 6)",
    )
    parser.add_argument(
        "--infogan-leak", type=float, default=0.1, help="D's lReLU slope: 0.1 (paper), 0.01 (code)"
    )
    parser.add_argument(
        "--infogan-q-ema",
        type=float,
        help="label the clusters with a weight average of D and Q of this decay (default: none)",
    )
    parser.add_argument("--infogan-eval-every", type=int, default=1000)
    parser.add_argument("--dcgan-steps", type=int, default=2000)
    parser.add_argument("--dcgan-width", type=int, default=32)
    parser.add_argument("--speed-steps", type=int, default=100)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default="0-3", help="infogan-seeds: the sweep's seeds")
    parser.add_argument(
        "--workers", type=int, default=None, help="infogan-seeds: members at once (default: cores)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gans"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument(
        "--resume", action="store_true", help="continue the runs in --out from their checkpoints"
    )
    parser.add_argument("--images", type=Path, default=Path("docs/images"), help="copy grids here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.only or ["infogan", "dcgan", "speed"]
    if {"infogan", "infogan-seeds", "dcgan"} & set(parts) and args.data_root is None:
        parser.error("the infogan and dcgan parts need --data-root (or use --only speed)")
    run_parts(
        "GAN benchmark",
        parts,
        {
            "infogan": infogan_part,
            "infogan-seeds": infogan_seeds_part,
            "dcgan": dcgan_part,
            "speed": speed_part,
        },
        args,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
