"""A synthetic, offline test bed for pose-to-video motion transfer (Chan et al., 2018).

"Everybody Dance Now" learns, from a few minutes of video of one *target*
person, a mapping from pose stick figures to frames of that person, then
drives it with the poses of a *source* dancer. Real footage cannot ship with
the package, so this package makes both videos:

* :mod:`.body`: an articulated 2-D figure (:class:`Body`: limb lengths as fractions
  of the image height, widths and clothing colours) with COCO-18 keypoints
  (:mod:`gan.data.pose`);
* :mod:`.motion`: smooth joint-angle trajectories (:func:`dance_angles`: sums of
  sinusoids with seeded phases) and :func:`pose_sequence` (forward kinematics). The
  root walks nearer and farther, so the ankle line and the apparent size change (scale
  0.8 to 1.0, :func:`depth_scale` in :mod:`.scene`), which is what the paper's global
  pose normalisation is for;
* :mod:`.person`: :func:`render_person`, the figure as a clothed, shaded person (capsule
  limbs lit from the upper left, shirt, trousers, shoes, hair, eyes, a soft floor
  shadow) drawn at 4x on a :mod:`.canvas` and area-averaged, over a static room
  (:func:`background`, :mod:`.scene`);
* :mod:`.dataset`: :func:`make_puppet_data`, the target doing one dance (training frames
  and held-out later frames), a differently built source doing another, and the ground
  truth only synthetic data gives: the target performing the source's motion
  (:attr:`PuppetData.transfer_truth`).
"""

from counterfeit.gan.data.puppet.body import RGB, SOURCE_BODY, TARGET_BODY, Body
from counterfeit.gan.data.puppet.dataset import PuppetData, make_puppet_data
from counterfeit.gan.data.puppet.motion import (
    ANGLE_KEYS,
    DANCES,
    FPS,
    ROOT_KEYS,
    dance_angles,
    pose_sequence,
)
from counterfeit.gan.data.puppet.person import person_mask, render_person
from counterfeit.gan.data.puppet.scene import background, depth_scale

__all__ = [
    "ANGLE_KEYS",
    "DANCES",
    "FPS",
    "RGB",
    "ROOT_KEYS",
    "SOURCE_BODY",
    "TARGET_BODY",
    "Body",
    "PuppetData",
    "background",
    "dance_angles",
    "depth_scale",
    "make_puppet_data",
    "person_mask",
    "pose_sequence",
    "render_person",
]
