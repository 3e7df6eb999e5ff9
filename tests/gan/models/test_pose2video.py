"""Pose-to-video (Chan et al. 2018): networks, the step against a hand-written one, the video
scores, the recipe end to end on the puppet, resume and ``counterfeit transfer``."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.pose import PoseFrameSequence, pose_labels, write_openpose_json
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.gan.method import StepContext
from counterfeit.gan.models.pose2video import Pose2Video
from counterfeit.gan.nets.patchgan import MultiscalePatchGAN, feature_matching_loss
from counterfeit.gan.train import Trainer, TrainerConfig
from counterfeit.gan.video import dilate, side_by_side, video_scores, write_video

pytestmark = pytest.mark.slow  # its file runs first: see conftest

TINY = dict(image_size=32, width=4, d_width=4, num_d=2)


def _batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(n, 3, size, size, generator=g) for _ in range(4)]
    faces = torch.full((n, 2), -1, dtype=torch.long)
    return (*images, faces, faces)


# -- networks --------------------------------------------------------------------------


def test_shapes_channels_and_scales():
    model = Pose2Video(**TINY)
    assert model.generator.in_channels == 6  # label + previous frame
    assert model.discriminator.in_channels == 12  # two consecutive (label, frame) pairs
    out = model.discriminator(torch.zeros(2, 12, 32, 32))
    assert len(out) == 2 and out[1][-1].shape[-1] < out[0][-1].shape[-1]  # coarser scale
    frames = model.generate(torch.rand(5, 3, 32, 32))
    assert frames.shape == (5, 3, 32, 32) and frames.min() >= 0 and frames.max() <= 1
    single = Pose2Video(**TINY, temporal=False)
    assert single.generator.in_channels == 3 and single.discriminator.in_channels == 6
    assert Pose2Video(**TINY, gan=False).discriminator is None


def test_temporal_conditioning_is_wired():
    torch.manual_seed(0)
    model = Pose2Video(**TINY).eval()
    label = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a = model.frame(label, torch.zeros(1, 3, 32, 32))
        b = model.frame(label, torch.ones(1, 3, 32, 32))
        first = model.frame(label, None)
    assert (a - b).abs().max() > 1e-3  # the previous frame changes the output
    assert torch.equal(first, a)  # no previous frame = a zero image
    # generate() feeds each output into the next frame: the second frame depends on the first
    labels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        video = model.generate(labels)
        by_hand = model.frame(labels[1:] * 2 - 1, video[:1] * 2 - 1)
    torch.testing.assert_close(video[1], ((by_hand + 1) / 2).clamp(0, 1)[0])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ConfigError, match="power of two"):
        Pose2Video(image_size=48)
    with pytest.raises(ConfigError, match="L1 alone"):
        Pose2Video(**TINY, gan=False, l1_weight=0)
    with pytest.raises(ConfigError, match="critic constraint"):
        Pose2Video(**TINY, gan_loss="wgan-gp")
    with pytest.raises(DataError, match="same T"):
        PoseFrameSequence(
            torch.zeros(3, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
        )
    with pytest.raises(DataError, match="pose2video batch"):
        Pose2Video(**TINY).train_step((torch.zeros(1),), None)
    with pytest.raises(DataError, match="labels must be"):
        Pose2Video(**TINY).generate(torch.zeros(2, 1, 32, 32))


def test_sequence_items_are_consecutive_pairs():
    labels = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous()
    frames = (labels * 10).contiguous()
    seq = PoseFrameSequence(labels, frames)
    assert len(seq) == 3
    x0, x1, y0, y1, _, _ = seq.get_batch(torch.tensor([0, 2]))
    assert torch.equal((x1 * 255).round(), (x0 * 255).round() + 1)
    assert torch.equal(((y1 - y0) * 255).round(), torch.full_like(y0, 10))


def test_feature_matching_against_hand_values():
    real = [[torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]] * 2
    fake = [[torch.ones(1, 1, 2, 2), torch.full((1, 1, 2, 2), 3.0), torch.ones(1, 1, 1, 1)]] * 2
    # per scale: 4 / 2 intermediate layers * (1 + 3) = 8; averaged over 2 scales: 8
    assert float(feature_matching_loss(fake, real)) == pytest.approx(8.0)
    assert float(feature_matching_loss(real, real)) == 0.0


def test_multiscale_d_downsamples_for_each_scale():
    d = MultiscalePatchGAN(3, num_d=3, width=4, n_layers=1)
    out = d(torch.zeros(1, 3, 32, 32))
    assert [o[0].shape[-1] for o in out] == [16, 8, 4]
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\)"):
        d(torch.zeros(1, 4, 32, 32))


# -- one step against a hand-written step ----------------------------------------------


def test_a_step_equals_a_hand_written_step():
    torch.manual_seed(0)
    model = Pose2Video(**TINY, lr=1e-3)
    g, d = copy.deepcopy(model.generator), copy.deepcopy(model.discriminator)
    batch = _batch()
    metrics = model.train_step(batch, StepContext.single_process(model.configure_optimizers(), 10))

    x0, x1, y0, y1 = (b * 2 - 1 for b in batch[:4])
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g0 = g(torch.cat([x0, torch.zeros_like(y0)], 1))  # y_{t-1} = G(x_{t-1}, 0)
    g1 = g(torch.cat([x1, g0], 1))  # y_t = G(x_t, y_{t-1})
    real_in, fake_in = torch.cat([x0, x1, y0, y1], 1), torch.cat([x0, x1, g0, g1], 1)
    # LSGAN (Mao et al. 2017): D: (D(real) - 1)^2 + D(fake)^2, halved; per scale, summed.
    d_loss = sum(
        0.5 * 0.5 * (((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean())
        for r, f in zip(d(real_in), d(fake_in.detach()))
    )
    opt_d.zero_grad()
    d_loss.backward()
    d_grads = [p.grad.clone() for p in d.parameters()]
    opt_d.step()
    fake, real = d(fake_in), d(real_in)
    gan = sum(0.5 * ((f[-1] - 1) ** 2).mean() for f in fake)
    fm = sum(
        4 / (len(fs) - 1) * F.l1_loss(a, b.detach()) / len(fake)
        for fs, rs in zip(fake, real)
        for a, b in zip(fs[:-1], rs[:-1])
    )
    g_loss = 100 * (F.l1_loss(g1, y1) + F.l1_loss(g0, y0)) + gan + 10 * fm
    opt_g.zero_grad()
    g_loss.backward()
    g_grads = [p.grad.clone() for p in g.parameters()]
    opt_g.step()

    torch.testing.assert_close(metrics["d_loss"], d_loss.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(metrics["g_loss"], g_loss.detach(), atol=1e-4, rtol=1e-5)
    # Adam's first step is about lr * sign(grad); where a gradient is rounding noise (a conv
    # bias before InstanceNorm is exactly zero in exact arithmetic) the sign is arbitrary.
    for mine, theirs, grads in ((model.generator, g, g_grads), (model.discriminator, d, d_grads)):
        scale = max(float(gr.abs().max()) for gr in grads)
        for (name, a), b, grad in zip(mine.named_parameters(), theirs.parameters(), grads):
            noise = grad.abs() < 1e-5 * scale
            assert torch.all((a - b)[noise].abs() <= 2e-3), name
            torch.testing.assert_close(a[~noise], b[~noise], atol=1e-6, rtol=1e-5, msg=name)


def test_l1_only_has_no_discriminator_and_trains_on_l1():
    torch.manual_seed(0)
    model = Pose2Video(**TINY, gan=False)
    opts = model.configure_optimizers()
    assert set(opts) == {"g"}
    metrics = model.train_step(_batch(), StepContext.single_process(opts, 10))
    assert set(metrics) == {"g_l1", "g_loss"}


def test_face_stage_trains_only_the_face_and_changes_only_the_face_box():
    torch.manual_seed(0)
    model = Pose2Video(image_size=64, width=4, d_width=4, num_d=1, face=True, face_fraction=0.5)
    assert model.face_size == 16
    assert not model.in_face_stage(0.4) and model.in_face_stage(0.5)
    batch = list(_batch(2, 64))
    batch[4] = batch[5] = torch.tensor([[8, 4], [-1, -1]])  # a face in the first frame only
    opts = model.configure_optimizers()
    ctx = StepContext.single_process(opts, 10)
    ctx.step = 9  # progress 0.9: the face stage
    main = copy.deepcopy(model.generator.state_dict())
    face = copy.deepcopy(model.face_generator.state_dict())
    metrics = model.train_step(tuple(batch), ctx)
    assert set(metrics) == {"face_d_loss", "face_l1"}
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in main.items())
    assert any(not torch.equal(v, model.face_generator.state_dict()[k]) for k, v in face.items())
    frame = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = model.enhance_face(torch.rand(2, 3, 64, 64), frame, batch[5])
    changed = (out != frame).any(1)
    assert (
        changed[0, 4:20, 8:24].any() and not changed[0, :4].any() and not changed[0, :, 24:].any()
    )
    assert not changed[1].any()  # no face box, no change


# -- video scores and files ------------------------------------------------------------


def test_video_scores_gate_on_the_person_and_measure_flicker():
    truth = torch.rand(6, 3, 16, 16)
    masks = torch.zeros(6, 16, 16, dtype=torch.bool)
    masks[:, 6:10, 6:10] = True
    wrong_person = truth.clone()
    wrong_person[:, :, 6:10, 6:10] = 1 - wrong_person[:, :, 6:10, 6:10]
    s = video_scores(wrong_person, truth, masks, dilate_pixels=0)
    assert s["psnr"] > s["fg_psnr"] + 10  # the background hides the bad person; fg does not
    assert video_scores(truth, truth)["flicker_ratio"] == pytest.approx(1.0)
    still = truth[:1].expand(6, -1, -1, -1)
    assert video_scores(still, truth)["flicker_ratio"] == 0.0
    assert dilate(masks[:1], 1)[0, 5:11, 5:11].all() and not dilate(masks[:1], 1)[0, 4].any()
    with pytest.raises(DataError, match="differ"):
        video_scores(truth[:2], truth)


def test_gif_round_trip_and_side_by_side(tmp_path):
    video = torch.rand(4, 3, 8, 10)
    strip = side_by_side(video, video[:, :1], gap=2)
    assert strip.shape == (4, 3, 8, 22)
    path = write_video(strip, tmp_path / "v.gif", fps=10, scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.size == (44, 16)
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        write_video(video, tmp_path / "v.avi")
    with pytest.raises(DataError, match="same length"):
        side_by_side(video, video[:2])
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:  # the clear error, not imageio's fallback to another format
        with pytest.raises(ConfigError, match="imageio-ffmpeg"):
            write_video(video, tmp_path / "v.mp4")
    else:
        assert write_video(video, tmp_path / "v.mp4").stat().st_size > 0


# -- recipe, resume, transfer ----------------------------------------------------------

TINY_RECIPE = [
    "data.n_train=160",
    "data.n_test=45",
    "data.n_source=30",
    "model.width=16",
    "model.d_width=8",
    "train.steps=200",
    "train.batch_size=8",
    "train.log_every=25",
    "train.checkpoint_every=100",
    "train.progress=false",
    "evaluation.samples_every=100",
    "evaluation.gif_scale=1",
    "tracking.enabled=false",
    "device=cpu",
]


@pytest.fixture(scope="module")
def puppet_run(tmp_path_factory):
    from counterfeit.recipes import load_recipe, run_recipe

    out = tmp_path_factory.mktemp("puppet") / "run"
    summary = run_recipe(load_recipe("puppet-dance", TINY_RECIPE), out=out)
    return out, summary


def test_tiny_run_beats_the_nearest_frame_and_does_not_drift(puppet_run):
    out, summary = puppet_run
    scores = summary["scores"]
    model, nearest = scores["pose2video"], scores["nearest training frame"]
    assert model["psnr"] > nearest["psnr"] and model["fg_psnr"] > nearest["fg_psnr"]
    assert model["psnr"] > scores["background only"]["psnr"]
    assert model["drift_db"] > -1.5  # recursive generation over 45 frames holds its quality
    assert summary["transfer_scores"]["pose2video"]["psnr"] > 10
    for name in ("test", "transfer"):
        with Image.open(out / "videos" / f"{name}.gif") as gif:
            assert gif.n_frames == (45 if name == "test" else 30)
    assert (out / "reference_poses.npy").is_file()
    assert summary["architecture"]["receptive_field"] == 34  # 64 px: 2 strided layers


def test_resume_continues_to_the_same_numbers(tmp_path):
    from counterfeit.gan.data.puppet import make_puppet_data

    p = make_puppet_data(32, 40, 8, 8)
    frames = torch.from_numpy(p.train_frames).permute(0, 3, 1, 2).contiguous()
    seq = PoseFrameSequence(pose_labels(p.train_poses, 32), frames)

    def fit(path, steps, resume=False):
        torch.manual_seed(0)
        model = Pose2Video(**TINY)
        config = TrainerConfig(max_steps=steps, progress=False, checkpoint_every=2, device="cpu")
        Trainer(model, InfiniteLoader(seq, 4, seed=0), config, checkpoint_path=path).fit(
            resume=resume
        )
        return model

    straight = fit(tmp_path / "a.ckpt", 4)
    fit(tmp_path / "b.ckpt", 2)
    resumed = fit(tmp_path / "b.ckpt", 4, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def _write_video_folder(root, frames, poses):
    """The user's layout: root/frames/NAME.png and root/poses/NAME_keypoints.json."""
    (root / "frames").mkdir(parents=True)
    (root / "poses").mkdir()
    for t, (frame, pose) in enumerate(zip(frames, poses)):
        Image.fromarray(frame).save(root / "frames" / f"f{t:03d}.png")
        write_openpose_json(root / "poses" / f"f{t:03d}_keypoints.json", pose)
    return root


def test_recipe_on_a_users_folder_layout(tmp_path):
    from counterfeit.gan.data.puppet import make_puppet_data
    from counterfeit.recipes import load_recipe, run_recipe

    p = make_puppet_data(64, 30, 8, 10, seed=5)
    _write_video_folder(tmp_path / "data" / "target", p.train_frames, p.train_poses)
    _write_video_folder(tmp_path / "data" / "source", p.source_frames, p.source_poses)
    overrides = [o for o in TINY_RECIPE if not o.startswith(("data.", "train.steps"))]
    overrides += ["model.face=true", "data.source=folder", f"data.path={tmp_path / 'data'}"]
    overrides += ["train.steps=5"]  # the face stage (the last 20%) is step 5
    summary = run_recipe(load_recipe("puppet-dance", overrides), out=tmp_path / "run")
    assert summary["data"] == str(tmp_path / "data")
    assert summary["architecture"]["face_parameters"] > 0
    assert set(summary["scores"]) == {"pose2video", "nearest training frame", "background only"}
    assert "fg_psnr" not in summary["scores"]["pose2video"]  # no person masks for real video
    assert summary["transfer_scores"] == {}  # no truth for a real transfer
    with pytest.raises(DataError, match="has no target/ folder"):
        bad = [*overrides[:-2], f"data.path={tmp_path / 'data' / 'target'}", "train.steps=5"]
        run_recipe(load_recipe("puppet-dance", bad), out=tmp_path / "bad")


def test_counterfeit_transfer_writes_the_video_and_the_side_by_side(puppet_run, tmp_path):
    from counterfeit.gan.data.pose import DEFAULT_SMOOTHING_WINDOW
    from counterfeit.gan.data.puppet import make_puppet_data
    from counterfeit.recipes.cli import main

    out, _ = puppet_run
    p = make_puppet_data(64, 16, 8, 12, seed=3)
    src = _write_video_folder(tmp_path / "dancer", p.source_frames, p.source_poses)
    video = tmp_path / "dance.gif"
    ckpt = out / "checkpoints" / "pose2video.ckpt"
    assert (
        main(
            [
                "transfer",
                "--checkpoint",
                str(ckpt),
                "--poses",
                str(src),
                "--out",
                str(video),
                "--scale",
                "1",
            ]
        )
        == 0
    )
    with Image.open(video) as gif:
        assert gif.n_frames == 12 and gif.size == (64, 64)
    with Image.open(tmp_path / "dance_side_by_side.gif") as gif:
        assert gif.size == (3 * 64 + 2 * 2, 64)
    meta = json.loads(video.with_suffix(".json").read_text())
    assert meta["normalized"] and meta["frames"] == 12
    assert meta["smoothing_window"] == DEFAULT_SMOOTHING_WINDOW  # the CLI's default
    with pytest.raises(CheckpointError, match="Pose2Video"):
        from counterfeit.recipes.transfer import load_pose2video

        torch.save({"format": 1, "method_class": "SRGAN"}, tmp_path / "x.ckpt")
        load_pose2video(tmp_path / "x.ckpt")
    assert np.load(out / "reference_poses.npy").shape[1:] == (18, 3)
