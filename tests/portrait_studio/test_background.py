"""The warp engine keeps the background still: outside face, hair and neck it moves < 2/255 on average."""

import numpy as np
import pytest

from mofa_engine.regions import face_region_mask
from portrait_studio.drivers import check_signal, drive
from portrait_studio.options import RenderOptions
from portrait_studio.studio import Studio
from portrait_studio.controls import MotionControls
from portrait_studio.engines.warp import warp_frames

pytestmark = pytest.mark.slow


def background_motion(portrait, frames, reference) -> float:
    """Mean |frame - portrait| / 255 over the pixels outside the face, hair and neck region."""
    h, w = portrait.shape[:2]
    outside = face_region_mask(reference, h, w, include_hair=True, include_neck=True) < 0.5
    total = [np.abs(f.astype(np.int16) - portrait.astype(np.int16))[outside].mean() / 255 for f in frames]
    return float(np.mean(total))


def test_background_stays_still_without_trajectories(portrait_path, speech_path):
    options = RenderOptions(engine="warp")
    with Studio(options) as studio:
        portrait = studio.prepare(portrait_path)
    track = drive(options, check_signal(options, speech_path), portrait).track
    frames = list(warp_frames(portrait, track, MotionControls()))
    moved = background_motion(portrait.image, frames, track.reference)
    print(f"background motion: {moved * 255:.3f}/255")
    assert moved < 2 / 255
    # ... while the face itself does move (the measure is not blind)
    face = face_region_mask(track.reference, 512, 512, include_hair=False, include_neck=False) > 0.5
    assert np.mean([np.abs(f.astype(np.int16) - portrait.image)[face].mean() for f in frames]) > 2
