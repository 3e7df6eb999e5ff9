"""Body keypoints for pose-to-video motion transfer (Chan et al., "Everybody Dance Now", 2018).

A *pose* is an ``(18, 3)`` float32 array of ``(x, y, confidence)`` in the pixel
coordinates of its frame, in OpenPose's COCO-18 order (:mod:`.keypoints`); a
*sequence* is ``(T, 18, 3)``.

* :mod:`.keypoints`: the COCO-18 and BODY_25 layouts, :func:`confident`, :func:`check_poses`;
* :mod:`.openpose`: :func:`read_openpose_json` / :func:`write_openpose_json` (OpenPose's
  per-frame JSON), :func:`read_pose_folder` and :func:`load_pose_video` (a user's
  ``frames/`` + ``poses/`` folders);
* :mod:`.stick_figure`: the network's input, :func:`render_stick_figure` (OpenPose's
  coloured limbs) and :func:`pose_labels` for a sequence;
* the paper's pre-processing: :func:`smooth_poses` (:mod:`.smoothing`, temporal smoothing
  of the keypoints), :func:`fit_pose_normalizer` (:mod:`.normalize`, global pose
  normalisation: map the source's ankle line and body height onto the target's) and
  :func:`face_box` / :func:`face_corners` (:mod:`.face`, the face crop the face GAN
  refines, centred on the nose);
* :mod:`.sequence`: :class:`PoseFrameSequence`, a target's video as consecutive
  (label, frame) pairs for training;
* :mod:`.noise`: :func:`detector_noise`, what a real detector does to clean keypoints
  (jitter, dropped points, confidences), for synthetic tests.
"""

from counterfeit.gan.data.pose.face import NO_FACE, face_box, face_corners, face_size_for
from counterfeit.gan.data.pose.keypoints import (
    BODY25_NAMES,
    BODY25_TO_COCO18,
    COCO18_LIMBS,
    COCO18_NAMES,
    FACE_POINTS,
    HEAD_POINTS,
    JOINT_COLORS,
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LIMB_COLORS,
    NECK,
    NOSE,
    NUM_KEYPOINTS,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    check_poses,
    confident,
)
from counterfeit.gan.data.pose.noise import detector_noise
from counterfeit.gan.data.pose.normalize import PoseNormalizer, fit_pose_normalizer
from counterfeit.gan.data.pose.openpose import (
    load_pose_video,
    read_openpose_json,
    read_pose_folder,
    write_openpose_json,
)
from counterfeit.gan.data.pose.sequence import PoseFrameSequence
from counterfeit.gan.data.pose.smoothing import DEFAULT_SMOOTHING_WINDOW, smooth_poses
from counterfeit.gan.data.pose.stick_figure import pose_labels, render_stick_figure

__all__ = [
    "BODY25_NAMES",
    "BODY25_TO_COCO18",
    "COCO18_LIMBS",
    "COCO18_NAMES",
    "DEFAULT_SMOOTHING_WINDOW",
    "FACE_POINTS",
    "HEAD_POINTS",
    "JOINT_COLORS",
    "LIMB_COLORS",
    "L_ANKLE",
    "L_EAR",
    "L_ELBOW",
    "L_EYE",
    "L_HIP",
    "L_KNEE",
    "L_SHOULDER",
    "L_WRIST",
    "NECK",
    "NOSE",
    "NO_FACE",
    "NUM_KEYPOINTS",
    "R_ANKLE",
    "R_EAR",
    "R_ELBOW",
    "R_EYE",
    "R_HIP",
    "R_KNEE",
    "R_SHOULDER",
    "R_WRIST",
    "PoseFrameSequence",
    "PoseNormalizer",
    "check_poses",
    "confident",
    "detector_noise",
    "face_box",
    "face_corners",
    "face_size_for",
    "fit_pose_normalizer",
    "load_pose_video",
    "pose_labels",
    "read_openpose_json",
    "read_pose_folder",
    "render_stick_figure",
    "smooth_poses",
    "write_openpose_json",
]
