"""The puppets' builds and clothes: the target person and a differently built source dancer."""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Body:
    """A figure's build and clothes; lengths and widths are fractions of the image height.

    ``torso`` runs from the neck to the middle of the hips, ``neck_to_nose`` from the
    neck to the nose of a face turned to the camera.
    """

    name: str
    torso: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shoulder_half: float
    hip_half: float
    neck_to_nose: float
    head_radius: float
    arm_width: float
    leg_width: float
    neck_width: float
    skin: RGB
    shirt: RGB
    trousers: RGB
    shoes: RGB
    hair: RGB


TARGET_BODY = Body(
    name="target",
    torso=0.235,
    upper_arm=0.13,
    forearm=0.12,
    thigh=0.185,
    shin=0.175,
    shoulder_half=0.085,
    hip_half=0.055,
    neck_to_nose=0.085,
    head_radius=0.062,
    arm_width=0.045,
    leg_width=0.06,
    neck_width=0.04,
    skin=(224, 172, 138),
    shirt=(196, 38, 52),
    trousers=(44, 62, 120),
    shoes=(34, 30, 28),
    hair=(70, 44, 26),
)
# Legs 12% longer, arms 12% shorter, narrower shoulders and other clothes.
SOURCE_BODY = Body(
    name="source",
    torso=0.24,
    upper_arm=0.115,
    forearm=0.105,
    thigh=0.207,
    shin=0.196,
    shoulder_half=0.075,
    hip_half=0.06,
    neck_to_nose=0.08,
    head_radius=0.058,
    arm_width=0.038,
    leg_width=0.052,
    neck_width=0.035,
    skin=(142, 94, 64),
    shirt=(236, 200, 50),
    trousers=(70, 70, 74),
    shoes=(232, 232, 228),
    hair=(22, 20, 20),
)
