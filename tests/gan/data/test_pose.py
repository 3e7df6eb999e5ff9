"""Pose data for motion transfer: OpenPose files, stick figures, smoothing, normalisation, puppets."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from counterfeit.gan.data.pose import (
    BODY25_NAMES,
    BODY25_TO_COCO18,
    COCO18_LIMBS,
    COCO18_NAMES,
    L_ANKLE,
    LIMB_COLORS,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    detector_noise,
    face_box,
    fit_pose_normalizer,
    load_pose_video,
    read_openpose_json,
    read_pose_folder,
    render_stick_figure,
    smooth_poses,
    write_openpose_json,
)
from counterfeit.gan.data.puppet import (
    DANCES,
    SOURCE_BODY,
    TARGET_BODY,
    background,
    dance_angles,
    depth_scale,
    make_puppet_data,
    person_mask,
    pose_sequence,
    render_person,
)
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.video import to_tensor_frames


def _random_pose(seed=0, size=64):
    rng = np.random.default_rng(seed)
    pose = np.zeros((18, 3), np.float32)
    pose[:, :2] = rng.uniform(0, size, (18, 2))
    pose[:, 2] = rng.uniform(0.1, 1, 18)
    return pose


def _t_pose():
    """A hand-made 128 px pose whose limbs do not touch at their midpoints."""
    xy = {
        "nose": (64, 30),
        "neck": (64, 46),
        "r_shoulder": (44, 46),
        "r_elbow": (28, 46),
        "r_wrist": (12, 46),
        "l_shoulder": (84, 46),
        "l_elbow": (100, 46),
        "l_wrist": (116, 46),
        "r_hip": (52, 86),
        "r_knee": (48, 104),
        "r_ankle": (46, 122),
        "l_hip": (76, 86),
        "l_knee": (80, 104),
        "l_ankle": (82, 122),
        "r_eye": (57, 23),
        "l_eye": (71, 23),
        "r_ear": (48, 28),
        "l_ear": (80, 28),
    }
    pose = np.ones((18, 3), np.float32)
    pose[:, :2] = [xy[name] for name in COCO18_NAMES]
    return pose


def _puppet(dance="sway", n=40, size=64, body=TARGET_BODY, seed=0, **fixed):
    angles = dance_angles(dance, n, seed=seed)
    angles.update({k: np.full(n, v, np.float64) for k, v in fixed.items()})
    return pose_sequence(body, angles, size)


# -- OpenPose files ---------------------------------------------------------------------------


def test_openpose_json_round_trip(tmp_path):
    pose = _random_pose()
    pose[5] = 0  # a missing keypoint
    write_openpose_json(tmp_path / "f_keypoints.json", pose)
    assert np.array_equal(read_openpose_json(tmp_path / "f_keypoints.json"), pose)
    write_openpose_json(tmp_path / "empty.json", np.zeros((18, 3)))
    assert json.loads((tmp_path / "empty.json").read_text())["people"] == []
    assert not read_openpose_json(tmp_path / "empty.json").any()
    with pytest.raises(ConfigError, match="BODY25"):
        write_openpose_json(tmp_path / "x.json", pose, layout="BODY25")


def test_body25_file_maps_to_coco18(tmp_path):
    body25 = np.array([[i, 100 + i, 0.5] for i in range(25)], np.float32)
    (tmp_path / "b.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]})
    )
    pose = read_openpose_json(tmp_path / "b.json")
    assert pose.shape == (18, 3) and pose.dtype == np.float32
    for j, name in enumerate(COCO18_NAMES):
        assert pose[j, 0] == BODY25_NAMES.index(name)
    assert pose[R_HIP, 0] == 9 and pose[NOSE, 0] == 0 and pose[17, 0] == 18  # mid_hip skipped
    assert 8 not in BODY25_TO_COCO18


def test_several_people_pick_the_most_confident(tmp_path):
    weak, strong = _random_pose(1), _random_pose(2)
    weak[:, 2], strong[:, 2] = 0.2, 0.9
    people = [{"pose_keypoints_2d": p.ravel().tolist()} for p in (weak, strong, weak)]
    (tmp_path / "p.json").write_text(json.dumps({"people": people}))
    assert np.allclose(read_openpose_json(tmp_path / "p.json"), strong)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', "3 keypoint values"),
        ('{"persons": []}', "people"),
    ],
)
def test_malformed_openpose_file_names_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "frame_7_keypoints.json"
    path.write_text(text)
    with pytest.raises(DataError, match=problem) as info:
        read_openpose_json(path)
    assert "frame_7_keypoints.json" in str(info.value)


def test_pose_folder_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        pose = np.zeros((18, 3), np.float32)
        pose[NECK] = (i, i, 1)
        name = f"clip_{i}.json" if i == 1 else f"clip_{i}_keypoints.json"
        write_openpose_json(tmp_path / name, pose)
    poses, stems = read_pose_folder(tmp_path)
    assert stems == ["clip_1", "clip_2", "clip_10"]
    assert poses.shape == (3, 18, 3) and poses[:, NECK, 0].tolist() == [1, 2, 10]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        read_pose_folder(tmp_path / "empty")


def test_load_pose_video_crops_resizes_and_maps_poses(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "poses").mkdir()
    image = np.zeros((20, 40, 3), np.uint8)  # 40 wide: the centre crop drops 10 px each side
    image[:, 10:30] = 200
    for stem in ("f1", "f2"):
        Image.fromarray(image).save(tmp_path / "frames" / f"{stem}.png")
        pose = np.zeros((18, 3), np.float32)
        pose[NECK] = (15, 5, 0.8)
        write_openpose_json(tmp_path / "poses" / f"{stem}_keypoints.json", pose)
    frames, poses = load_pose_video(tmp_path, 10)
    assert frames.shape == (2, 10, 10, 3) and frames.dtype == np.uint8
    assert (frames > 150).all()  # only the bright centre square is kept
    assert np.allclose(poses[0, NECK], (2.25, 2.25, 0.8))  # (15 - 10 + 0.5) / 2 - 0.5
    assert not poses[0, NOSE].any()  # missing stays missing


def test_load_pose_video_names_unmatched_frames(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "poses").mkdir()
    for stem in ("a", "b"):
        Image.new("RGB", (8, 8)).save(tmp_path / "frames" / f"{stem}.jpg")
    for stem in ("a", "c"):
        write_openpose_json(tmp_path / "poses" / f"{stem}_keypoints.json", _random_pose())
    with pytest.raises(DataError, match=r"frames without a pose file: b.*without a frame: c"):
        load_pose_video(tmp_path, 8)
    with pytest.raises(DataError, match="no frames/"):
        load_pose_video(tmp_path / "poses", 8)


# -- stick figures ------------------------------------------------------------------------


def test_stick_figure_colours_each_limb_and_skips_unconfident_ones():
    pose = _t_pose()
    image = render_stick_figure(pose, 128)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    for (a, b), color in zip(COCO18_LIMBS, LIMB_COLORS):
        x, y = np.round((pose[a, :2] + pose[b, :2]) / 2).astype(int)
        assert np.abs(image[y, x].astype(int) - color).max() <= 10, (
            COCO18_NAMES[a],
            COCO18_NAMES[b],
        )
    assert not image[:8].any() and not image[:, :6].any() and not image[60:80, 100:].any()

    pose[R_ELBOW, 2] = 0.01  # below the 0.05 threshold
    image = render_stick_figure(pose, 128)
    for a, b in ((R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST)):
        x, y = np.round((pose[a, :2] + pose[b, :2]) / 2).astype(int)
        assert not image[y, x].any()
    x, y = pose[R_WRIST, :2].astype(int)
    assert image[y, x].any()  # the confident wrist keeps its dot


# -- smoothing ----------------------------------------------------------------------------


def test_smoothing_lowers_jitter_and_fills_dropped_points():
    t = np.arange(60, dtype=np.float32)
    clean = np.ones((60, 18, 3), np.float32)
    clean[..., 0] = 20 + 0.3 * t[:, None]
    clean[..., 1] = 30 + 5 * np.sin(t / 10)[:, None]
    noisy = clean.copy()
    noisy[..., :2] += np.random.default_rng(0).normal(0, 1.5, noisy[..., :2].shape)
    noisy[30, R_WRIST] = 0  # dropped by the detector
    noisy[31, R_WRIST] = (500, 500, 0.01)  # a wild, unconfident detection
    smooth = smooth_poses(noisy, window=5)
    rough = lambda s: np.diff(s[..., :2], axis=0).std()  # noqa: E731
    assert rough(smooth) < 0.6 * rough(noisy)
    inner = slice(3, 57)
    assert (
        np.abs(smooth[inner] - clean[inner])[..., :2].mean()
        < np.abs(noisy[inner] - clean[inner])[..., :2].mean()
    )
    for frame in (30, 31):
        assert smooth[frame, R_WRIST, 2] == pytest.approx(1.0)
        assert np.abs(smooth[frame, R_WRIST, :2] - clean[frame, R_WRIST, :2]).max() < 3
    assert np.array_equal(smooth_poses(noisy, window=1), noisy)
    lonely = np.zeros((5, 18, 3), np.float32)
    lonely[2, NECK] = (10, 10, 0.02)
    assert not smooth_poses(lonely, 3).any()  # nothing confident nearby: missing
    for bad in (0, 4, 2.0):
        with pytest.raises(ConfigError, match="odd"):
            smooth_poses(noisy, window=bad)


# -- global pose normalisation ------------------------------------------------------------------


def _walking_target(n_each=10, size=96):
    """Target poses at depths spanning far to close, with the extremes held (so the 5th /
    95th percentiles are the extremes), legs still and the ankles centred."""
    depth = np.concatenate([np.ones(n_each), np.linspace(1, 0, 4 * n_each), np.zeros(n_each)])
    n = len(depth)
    angles = dance_angles("disco", n)
    angles.update(
        depth=depth,
        root_x=np.zeros(n),
        r_hip=np.full(n, 0.1),
        l_hip=np.full(n, 0.1),
        r_knee=np.full(n, 0.2),
        l_knee=np.full(n, 0.2),
    )
    return pose_sequence(TARGET_BODY, angles, size)


def test_normalizer_maps_a_scaled_shifted_source_onto_the_target():
    target = _walking_target()
    factor, shift = 0.7, np.array([9.0, -12.0])
    source = target.copy()
    source[..., :2] = factor * target[..., :2] + shift
    source[5, R_WRIST] = 0  # a missing source keypoint
    norm = fit_pose_normalizer(source, target)
    assert norm.source_far < norm.source_close and norm.target_far < norm.target_close
    out = norm.apply(source)
    present = source[..., 2] > 0
    assert np.abs(out[present][:, :2] - target[present][:, :2]).max() < 1.0
    assert np.array_equal(out[..., 2], source[..., 2])
    assert not out[5, R_WRIST].any()
    for y in (norm.source_far, norm.source_close, (norm.source_far + norm.source_close) / 2):
        assert norm.scale(y) == pytest.approx(1 / factor, rel=1e-3)
    assert np.allclose(norm.apply(source[7]), out[7])  # one pose at a time


def test_normalizer_degenerate_inputs_stay_finite():
    target = _walking_target()
    still = np.repeat(target[:1], 8, axis=0)  # far == close
    norm = fit_pose_normalizer(still, target)
    assert norm.source_far == norm.source_close
    assert float(norm.alpha(norm.source_far + 3)) == 0.0
    out = norm.apply(still)
    assert np.isfinite(out).all()
    no_feet = still.copy()
    no_feet[3, [R_ANKLE, L_ANKLE]] = 0  # this frame borrows the previous frame's ankles
    assert np.allclose(norm.apply(no_feet)[3, NECK], out[3, NECK])
    with pytest.raises(DataError, match="no confident keypoint"):
        fit_pose_normalizer(np.zeros((4, 18, 3)), target)


# -- detector noise and face boxes ----------------------------------------------------------


def test_detector_noise_statistics():
    clean = np.repeat(_t_pose()[None], 2000, axis=0)
    noisy = detector_noise(clean, jitter_px=1.5, drop_prob=0.2, seed=3)
    kept = noisy[..., 2] > 0
    assert kept.mean() == pytest.approx(0.8, abs=0.01)
    assert not noisy[~kept].any()
    assert noisy[kept][:, 2].min() >= 0.3 and noisy[kept][:, 2].max() <= 1.0
    error = (noisy[..., :2] - clean[..., :2])[kept]
    assert error.std() == pytest.approx(1.5, rel=0.03) and abs(error.mean()) < 0.05
    assert np.array_equal(noisy, detector_noise(clean, 1.5, 0.2, seed=3))
    with pytest.raises(ConfigError, match="drop_prob"):
        detector_noise(clean, 1.0, 1.5, seed=0)


def test_face_box_is_a_square_inside_the_image():
    poses = _puppet(n=20, size=64)
    for pose in poses:
        x0, y0, x1, y1 = face_box(pose, 64)
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64 and x1 - x0 == y1 - y0 >= 64 // 8
        assert x0 <= pose[NOSE, 0] <= x1 and y0 <= pose[NOSE, 1] <= y1
    edge = poses[0].copy()
    edge[:, 0] -= edge[NOSE, 0] - 1  # the face at the left border
    x0, _, x1, _ = face_box(edge, 64)
    assert x0 == 0 and x1 > 1
    faceless = poses[0].copy()
    faceless[[NOSE, R_EYE, 15, R_EAR, 17], 2] = 0
    faceless[R_EYE, 2] = 1.0  # one face point is not enough
    assert face_box(faceless, 64) is None


# -- the puppet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [0.0, 1.0])
def test_forward_kinematics_keeps_limb_lengths_and_stands_on_the_ground(depth):
    size = 100
    poses = _puppet("disco", n=30, size=size, depth=depth)
    unit = size * float(depth_scale(depth))
    length = lambda a, b: np.linalg.norm(poses[:, a, :2] - poses[:, b, :2], axis=1)  # noqa: E731
    assert np.allclose(length(R_SHOULDER, R_ELBOW), TARGET_BODY.upper_arm * unit, atol=1e-3)
    assert np.allclose(length(R_ELBOW, R_WRIST), TARGET_BODY.forearm * unit, atol=1e-3)
    assert np.allclose(length(R_HIP, R_KNEE), TARGET_BODY.thigh * unit, atol=1e-3)
    assert np.allclose(length(R_KNEE, R_ANKLE), TARGET_BODY.shin * unit, atol=1e-3)
    assert np.allclose(length(NECK, R_SHOULDER), TARGET_BODY.shoulder_half * unit, atol=1e-3)
    mid_hip = (poses[:, R_HIP, :2] + poses[:, 11, :2]) / 2
    assert np.allclose(
        np.linalg.norm(poses[:, NECK, :2] - mid_hip, axis=1), TARGET_BODY.torso * unit, atol=1e-3
    )
    ground = poses[:, [R_ANKLE, L_ANKLE], 1].max(1)
    assert np.ptp(ground) < 1e-3  # one ground line per depth
    assert (poses[..., :2] >= 0).all() and (poses[..., :2] < size).all()
    assert (poses[..., 2] == 1).all() and poses.dtype == np.float32


def test_farther_is_higher_and_smaller_and_the_bodies_differ():
    near, far = _puppet(depth=0.0, n=5)[0], _puppet(depth=1.0, n=5)[0]
    assert far[R_ANKLE, 1] < near[R_ANKLE, 1]
    assert (far[R_ANKLE, 1] - far[NOSE, 1]) < 0.85 * (near[R_ANKLE, 1] - near[NOSE, 1])
    assert SOURCE_BODY.thigh / TARGET_BODY.thigh == pytest.approx(1.12, abs=0.01)
    assert SOURCE_BODY.shin / TARGET_BODY.shin == pytest.approx(1.12, abs=0.01)
    assert SOURCE_BODY.upper_arm < TARGET_BODY.upper_arm
    assert SOURCE_BODY.shirt != TARGET_BODY.shirt and SOURCE_BODY.skin != TARGET_BODY.skin


def test_dances_are_distinct_and_validated():
    sway, disco = dance_angles("sway", 300), dance_angles("disco", 300)
    # disco raises one arm while the other comes down, on a faster beat than sway's
    assert np.corrcoef(disco["r_shoulder"], disco["l_shoulder"])[0, 1] < -0.9
    assert np.corrcoef(sway["r_shoulder"], sway["l_shoulder"])[0, 1] > -0.5
    crossings = lambda x: np.count_nonzero(np.diff(np.sign(x - x.mean())))  # noqa: E731
    assert crossings(disco["r_shoulder"]) > 2 * crossings(sway["r_shoulder"])
    assert disco["depth"].min() < 0.1 and disco["depth"].max() > 0.9
    again = dance_angles("sway", 300)
    assert all(np.array_equal(sway[k], again[k]) for k in sway)
    assert not np.array_equal(sway["lean"], dance_angles("sway", 300, seed=1)["lean"])
    later = dance_angles("sway", 10, start=290)
    assert np.allclose(later["lean"], sway["lean"][290:])
    with pytest.raises(ConfigError, match=", ".join(DANCES)):
        dance_angles("tango", 10)


def test_render_person_is_deterministic_and_masked():
    size = 64
    pose = _puppet(n=3, size=size)[1]
    scene = background(size, seed=0)
    image = render_person(pose, TARGET_BODY, size, scene)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert np.array_equal(image, render_person(pose, TARGET_BODY, size, scene))
    assert np.array_equal(scene, background(size, seed=0))
    assert not np.array_equal(scene, background(size, seed=1))
    mask = person_mask(pose, TARGET_BODY, size)
    assert mask.dtype == bool and 0.03 < mask.mean() < 0.3
    diff = np.abs(image.astype(int) - scene).sum(-1)
    assert diff[mask].mean() > 60  # the person stands out from the room
    on_black = render_person(pose, TARGET_BODY, size)
    grown = mask.copy()  # the mask (coverage >= 1/2) grown by one pixel holds every drawn pixel
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= grown[:, :-1].copy()
    grown[:, :-1] |= grown[:, 1:].copy()
    assert not on_black[~grown].any()
    assert np.all(on_black[mask].sum(-1) > 0)
    other = render_person(pose, SOURCE_BODY, size, scene)
    assert np.abs(other.astype(int) - image)[mask].mean() > 20


def test_make_puppet_data_shapes_noise_and_held_out_poses():
    data = make_puppet_data(32, n_train=24, n_test=8, n_source=8, jitter_px=1.0, drop_prob=0.1)
    for name, n in (("train", 24), ("test", 8)):
        assert getattr(data, f"{name}_frames").shape == (n, 32, 32, 3)
        assert getattr(data, f"{name}_frames").dtype == np.uint8
        assert getattr(data, f"{name}_masks").shape == (n, 32, 32)
        assert getattr(data, f"{name}_masks").dtype == bool
        assert getattr(data, f"{name}_poses").shape == (n, 18, 3)
        assert (getattr(data, f"{name}_clean_poses")[..., 2] == 1).all()
    assert data.source_frames.shape == data.transfer_truth.shape == (8, 32, 32, 3)
    assert data.transfer_masks.shape == (8, 32, 32) and data.background.shape == (32, 32, 3)
    assert data.source_poses.dtype == np.float32 and data.fps == 15
    assert 0.03 < (data.train_poses[..., 2] == 0).mean() < 0.2  # the detector dropped some
    assert not np.array_equal(data.train_poses, data.train_clean_poses)
    gaps = np.abs(data.test_clean_poses[:, None] - data.train_clean_poses[None])[..., :2]
    assert gaps.mean(axis=(2, 3)).min() > 0.5  # no held-out pose repeats a training pose
    # the truth is the target's body doing the source's moves: same feet, other clothes
    assert not np.array_equal(data.transfer_truth, data.source_frames)
    clean = make_puppet_data(32, n_train=4, n_test=2, n_source=2)
    assert np.array_equal(clean.train_poses, clean.train_clean_poses)
    tensors = to_tensor_frames(data.train_frames)
    assert tensors.shape == (24, 3, 32, 32) and tensors.dtype == torch.float32
    assert tensors.min() >= 0 and tensors.max() <= 1
    with pytest.raises(DataError, match="uint8"):
        to_tensor_frames(data.train_frames.astype(np.float32))
