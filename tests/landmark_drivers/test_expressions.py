"""Expression keyframes, presets and sliders: interpolation, layering, presets on the rig, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from landmark_drivers import FaceMotion, SourceFace
from landmark_drivers.expressions import (CHANNELS, ExpressionError, apply_expression, expression_from_sliders,
                                          load_expression, motion_from_sliders, parse_expression)
from landmark_drivers.presets import GESTURE_PRESETS, POSE_PRESETS, PRESETS
from landmark_drivers.rig import FaceRig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "expressions"
FPS = 25.0
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 30, 48, 54


def motion(*keyframes: dict, frames: int = 101, fps: float = FPS, **top) -> FaceMotion:
    return parse_expression({"keyframes": list(keyframes), **top}).to_motion(frames, fps)


def base_motion(frames: int = 101, **channels: float) -> FaceMotion:
    """A driver motion holding the given channels constant."""
    m = FaceMotion.still(frames, FPS)
    for name, value in channels.items():
        m.channel(name)[:] = value  # channel() returns a view
    return m


# --- interpolation -------------------------------------------------------------------------------------------

def test_linear_interpolation_hits_midpoints_and_holds_after_the_last_key():
    m = motion({"t": 0.0, "jawOpen": 0.0}, {"t": 2.0, "jawOpen": 1.0}, {"t": 4.0, "jawOpen": 0.5}, frames=51, fps=10)
    jaw = m.channel("jawOpen")
    np.testing.assert_allclose(jaw[[0, 5, 10, 20, 30, 40, 50]], [0.0, 0.25, 0.5, 1.0, 0.75, 0.5, 0.5], atol=1e-6)


def test_smooth_interpolation_is_monotone_exact_at_keys_and_flat_there():
    m = motion({"t": 0.0, "jawOpen": 0.0}, {"t": 1.0, "jawOpen": 1.0}, {"t": 2.0, "jawOpen": 0.2},
               frames=301, fps=100, interpolation="smooth")
    jaw = m.channel("jawOpen").astype(np.float64)
    np.testing.assert_allclose(jaw[[0, 100, 200, 300]], [0.0, 1.0, 0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(jaw[[25, 50]], [0.15625, 0.5], atol=1e-6)  # smoothstep(0.25), smoothstep(0.5)
    assert np.all(np.diff(jaw[:101]) >= 0) and np.all(np.diff(jaw[100:201]) <= 0)
    assert jaw.min() >= 0.0 and jaw.max() <= 1.0  # no overshoot
    linear_step = 0.01  # per frame on the first segment
    for key in (0, 100, 200):
        near = [d for d in (jaw[key + 1] - jaw[key], jaw[key] - jaw[key - 1] if key else 0.0)]
        assert max(abs(d) for d in near) < 0.05 * linear_step


def test_per_keyframe_interpolation_eases_only_the_segment_into_that_keyframe():
    m = motion({"t": 0.0, "yaw": 0.0}, {"t": 1.0, "yaw": 10.0}, {"t": 2.0, "yaw": 20.0, "interpolation": "smooth"},
               frames=51, fps=20)
    yaw = m.channel("yaw")
    assert yaw[10] == pytest.approx(5.0, abs=1e-5)  # linear half-way into key 1
    assert yaw[25] == pytest.approx(10.0 + 10.0 * 0.15625, abs=1e-4)  # smoothstep a quarter into key 2


def test_values_hold_before_a_channels_first_key():
    m = motion({"t": 1.0, "yaw": 10.0, "jawOpen": 0.2}, {"t": 2.0, "yaw": 20.0})
    np.testing.assert_allclose(m.channel("yaw")[:26], 10.0)
    np.testing.assert_allclose(m.channel("jawOpen"), 0.2, atol=1e-7)  # one key: constant
    np.testing.assert_allclose(m.channel("yaw")[50:], 20.0)


def test_add_channel_first_keyed_later_starts_from_zero_at_the_first_keyframe():
    m = motion({"t": 0.0, "jawOpen": 0.0}, {"t": 2.0, "yaw": 15.0})
    assert m.channel("yaw")[0] == 0.0 and m.channel("yaw")[25] == pytest.approx(7.5)
    held = motion({"t": 2.0, "yaw": 15.0})  # the first keyframe sets it: held from the start
    np.testing.assert_allclose(held.channel("yaw"), 15.0)


def test_unsorted_keyframes_are_sorted():
    keys = [{"t": 2.0, "jawOpen": 1.0}, {"t": 0.0, "jawOpen": 0.0}, {"t": 1.0, "jawOpen": 0.2}]
    np.testing.assert_array_equal(motion(*keys).blendshapes, motion(*sorted(keys, key=lambda k: k["t"])).blendshapes)


def test_frame_count_and_fps_are_honoured():
    m = motion({"t": 0.0, "jawOpen": 0.0}, {"t": 2.0, "jawOpen": 1.0}, frames=37, fps=12.5)
    assert m.num_frames == 37 and m.fps == 12.5 and m.blendshapes.dtype == np.float32
    jaw = m.channel("jawOpen")
    assert jaw[25] == pytest.approx(1.0) and jaw[24] < 1.0  # t = 2 s is frame 25 at 12.5 fps
    with pytest.raises(ValueError, match="num_frames"):
        parse_expression({"keyframes": [{"t": 0, "yaw": 1}]}).to_motion(-1, 25)
    with pytest.raises(ValueError, match="fps"):
        parse_expression({"keyframes": [{"t": 0, "yaw": 1}]}).to_motion(10, 0)


# --- layering ------------------------------------------------------------------------------------------------

def test_add_and_override_over_a_nonzero_base():
    base = base_motion(jawOpen=0.3, yaw=5.0, pitch=-2.0)
    track = parse_expression({"modes": {"yaw": "override"}, "keyframes": [
        {"t": 0.0}, {"t": 1.0, "jawOpen": 0.5, "yaw": 20.0}, {"t": 2.0, "yaw": 20.0}, {"t": 3.0, "yaw": None}]})
    out = apply_expression(base, track)
    jaw, yaw = out.channel("jawOpen"), out.channel("yaw")
    assert jaw[0] == pytest.approx(0.3) and jaw[12] == pytest.approx(0.3 + 0.5 * 12 / 25)  # eases in from t=0
    np.testing.assert_allclose(jaw[25:], 0.8, atol=1e-6)  # add: 0.3 + 0.5, held
    assert yaw[0] == pytest.approx(5.0) and yaw[10] == pytest.approx(5.0 + 15.0 * 10 / 25)  # driver -> keys
    np.testing.assert_allclose(yaw[25:51], 20.0)  # overridden
    assert yaw[60] == pytest.approx(20.0 - 15.0 * 10 / 25)  # released back toward the driver over 2-3 s
    np.testing.assert_allclose(yaw[75:], 5.0)  # the driver after the release
    np.testing.assert_allclose(out.channel("pitch"), -2.0)  # unkeyed channels pass through
    assert out.num_frames == base.num_frames and out.fps == base.fps


def test_a_single_override_key_overrides_the_whole_clip():
    out = apply_expression(base_motion(yaw=5.0), parse_expression({"mode": "override", "keyframes": [
        {"t": 2.0, "yaw": -10.0}]}))
    np.testing.assert_allclose(out.channel("yaw"), -10.0)


def test_to_motion_is_the_track_over_a_still_portrait():
    track = parse_expression({"modes": {"yaw": "override"}, "keyframes": [
        {"t": 0.5, "preset": "smile", "pitch": 3}, {"t": 1.0, "yaw": 10, "preset": "nod"}, {"t": 2.0, "yaw": None}]})
    a, b = track.to_motion(80, FPS), apply_expression(FaceMotion.still(80, FPS), track)
    for name in ("blendshapes", "rotation", "translation"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_add_clamps_to_unit_range_and_negative_add_damps_the_driver():
    base = base_motion(jawOpen=0.3, mouthSmileLeft=0.5)
    out = apply_expression(base, parse_expression({"keyframes": [{"t": 0, "jawOpen": 0.9, "mouthSmileLeft": -0.2}]}))
    np.testing.assert_allclose(out.channel("jawOpen"), 1.0)
    np.testing.assert_allclose(out.channel("mouthSmileLeft"), 0.3, atol=1e-6)


def test_file_level_override_replaces_blendshapes():
    base = base_motion(jawOpen=0.7)
    out = apply_expression(base, parse_expression({"mode": "override", "keyframes": [{"t": 0, "jawOpen": 0.1}]}))
    np.testing.assert_allclose(out.channel("jawOpen"), 0.1, atol=1e-6)


def test_gestures_are_added_on_top_of_an_override():
    base = base_motion(pitch=4.0)
    track = parse_expression({"modes": {"pitch": "override"}, "keyframes": [
        {"t": 0.0, "pitch": 10.0}, {"t": 1.0, "preset": "nod"}, {"t": 2.5, "pitch": 10.0}, {"t": 3.0, "pitch": None}]})
    pitch = apply_expression(base, track).channel("pitch")
    np.testing.assert_allclose(pitch[:25], 10.0)
    assert pitch[25:45].min() < 10.0 - 6.0  # the nod dips from the keyed pitch
    np.testing.assert_allclose(pitch[45:63], 10.0, atol=1e-4)
    np.testing.assert_allclose(pitch[75:], 4.0)  # after the release the driver shows through


# --- presets -------------------------------------------------------------------------------------------------

def test_smile_preset_raises_the_mouth_corners_scaled_by_amount():
    full = motion({"t": 0, "preset": "smile"}, frames=3)
    half = motion({"t": 0, "preset": "smile", "amount": 0.5}, frames=3)
    as_key = motion({"t": 0, "smile": 0.5}, frames=3)
    for side in ("mouthSmileLeft", "mouthSmileRight"):
        assert full.channel(side)[0] == pytest.approx(0.8)
        assert half.channel(side)[0] == pytest.approx(0.4)
    np.testing.assert_array_equal(half.blendshapes, as_key.blendshapes)


def test_written_out_channels_add_to_a_preset():
    m = motion({"t": 0, "preset": "smile", "mouthSmileLeft": 0.2}, frames=2)
    assert m.channel("mouthSmileLeft")[0] == pytest.approx(1.0)
    assert m.channel("mouthSmileRight")[0] == pytest.approx(0.8)


def test_preset_field_switches_pose_presets_while_preset_keys_mix():
    switched = motion({"t": 0, "preset": "look_left"}, {"t": 2, "preset": "look_right"})
    assert switched.channel("yaw")[0] == pytest.approx(-20.0) and switched.channel("yaw")[50] == pytest.approx(20.0)
    assert switched.channel("eyeLookOutLeft")[50] == 0.0 and switched.channel("eyeLookOutRight")[50] == 0.5
    mixed = motion({"t": 0, "look_left": 1.0}, {"t": 2, "look_right": 1.0})
    assert mixed.channel("yaw")[50] == pytest.approx(0.0)  # both at full: the turns cancel
    neutral = motion({"t": 0, "preset": ["smile", "look_up"]}, {"t": 1, "preset": "neutral"}, frames=30)
    assert not neutral.blendshapes[25:].any() and not neutral.rotation[25:].any()


def test_pose_preset_eases_in_from_the_first_keyframe():
    m = motion({"t": 0.0, "jawOpen": 0.0}, {"t": 2.0, "jawOpen": 1.0, "yaw": 15, "preset": "smile"})
    smile = m.channel("mouthSmileLeft")
    assert smile[0] == 0.0 and smile[25] == pytest.approx(0.4) and smile[50] == pytest.approx(0.8)


def test_nod_oscillates_pitch_chin_down_first_and_returns_to_zero():
    pitch = motion({"t": 1.0, "preset": "nod"}).channel("pitch")
    assert not pitch[:26].any()  # nothing before the keyframe
    window = pitch[25:46]  # 1.0 - 1.8 s
    assert window.min() < -7.0 and window.max() > 4.0
    assert np.argmin(window) < np.argmax(window)  # dips before it rises
    np.testing.assert_allclose(pitch[45:], 0.0, atol=1e-4)
    half = motion({"t": 1.0, "preset": "nod", "amount": 0.5}).channel("pitch")
    np.testing.assert_allclose(half, 0.5 * pitch, atol=1e-5)


def test_shake_oscillates_yaw_and_returns_to_zero():
    yaw = motion({"t": 0.5, "preset": "shake"}).channel("yaw")
    window = yaw[12:40]
    assert window.max() > 9.0 and window.min() < -9.0
    np.testing.assert_allclose(yaw[38:], 0.0, atol=1e-4)


@pytest.mark.parametrize("fps, start", [(25.0, 1.0), (30.0, 1.013), (12.0, 0.97)])
def test_blink_closes_the_eyes_then_reopens_within_0_3_s(fps, start):
    m = motion({"t": start, "preset": "blink"}, frames=int(3 * fps), fps=fps)
    times = np.arange(m.num_frames) / fps
    for eye in ("eyeBlinkLeft", "eyeBlinkRight"):
        w = m.channel(eye)
        assert w.max() == pytest.approx(1.0, abs=1e-6)
        assert not w[times < start - 1.0 / fps].any()
        closed_at = times[np.argmax(w)]
        assert start - 1.0 / fps <= closed_at <= start + 0.15
        assert not w[times >= start + 0.3].any()


def test_wink_closes_one_eye_only():
    m = motion({"t": 0.5, "preset": "wink_left"})
    assert m.channel("eyeBlinkLeft").max() == pytest.approx(1.0) and not m.channel("eyeBlinkRight").any()


def test_preset_library_is_well_formed():
    assert {"smile", "surprise", "frown", "nod", "shake", "look_left", "look_right", "blink"} <= set(PRESETS)
    u = np.linspace(0, 1, 201)
    for preset in PRESETS.values():
        assert preset.description and set(preset.channels) <= set(CHANNELS), preset.name
        if preset.name in GESTURE_PRESETS:
            assert preset.duration_s > 0 and np.abs(preset.profile(u)).max() == pytest.approx(1.0, abs=1e-3)
            np.testing.assert_allclose(preset.profile(np.array([-0.1, 0.0, 1.0, 1.1])), 0.0, atol=1e-12)
        else:
            assert preset.name in POSE_PRESETS
            parse_expression({"mode": "override", "keyframes": [{"t": 0, **preset.channels}]})  # in range


# --- presets on the rig --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rig(portrait_face: SourceFace) -> FaceRig:
    return FaceRig(portrait_face)


def _last_frame(rig: FaceRig, *keyframes: dict) -> np.ndarray:
    return rig.track(motion(*keyframes, frames=3)).points[-1]


def test_smile_preset_widens_and_lifts_the_mouth_on_the_portrait(rig):
    ref, p = rig.reference, _last_frame(rig, {"t": 0, "preset": "smile"})
    width = lambda q: np.linalg.norm(q[MOUTH_RIGHT] - q[MOUTH_LEFT])  # noqa: E731
    assert width(p) > 1.1 * width(ref)
    assert np.all(p[[MOUTH_LEFT, MOUTH_RIGHT], 1] < ref[[MOUTH_LEFT, MOUTH_RIGHT], 1])  # corners up (y down)


def test_yaw_keyframe_and_look_presets_turn_the_head(rig, portrait_face):
    iod, nose = portrait_face.interocular, rig.reference[NOSE_TIP, 0]
    assert _last_frame(rig, {"t": 0, "yaw": 15})[NOSE_TIP, 0] < nose - 0.1 * iod  # toward image-left
    assert _last_frame(rig, {"t": 0, "preset": "look_left"})[NOSE_TIP, 0] > nose + 0.1 * iod  # subject's left


# --- validation ----------------------------------------------------------------------------------------------

def _doc(*keyframes, **top):
    return {"keyframes": list(keyframes), **top}


INVALID = [  # (document, offending key, keyframe index or None, text the message must hold)
    (_doc({"t": 0, "jawOpn": 0.5}), "jawOpn", 0, "did you mean 'jawOpen'"),
    (_doc({"t": 0}, {"t": 1, "preset": "smiel"}), "preset", 1, "did you mean 'smile'"),
    (_doc({"t": 0, "jawOpen": "0.5"}), "jawOpen", 0, "must be a number"),
    (_doc({"t": 0, "jawOpen": True}), "jawOpen", 0, "must be a number"),
    (_doc({"t": 0, "jawOpen": float("nan")}), "jawOpen", 0, "finite"),
    (_doc({"t": 0, "yaw": float("inf")}), "yaw", 0, "finite"),
    (_doc({"t": 0, "jawOpen": 1.5}), "jawOpen", 0, "outside [-1, 1]"),
    (_doc({"t": 0, "jawOpen": -0.2}, mode="override"), "jawOpen", 0, "outside [0, 1]"),
    (_doc({"t": 0, "yaw": 75}), "yaw", 0, "75"),
    (_doc({"t": 0}, {"t": 1, "pitch": -61}), "pitch", 1, "-61"),
    (_doc({"t": 0, "z": 0.8}), "z", 0, "0.8"),
    (_doc({"t": -1.0, "jawOpen": 0.5}), "t", 0, "-1"),
    (_doc({"jawOpen": 0.5}), "t", 0, "missing 't'"),
    (_doc({"t": 1.0, "yaw": 1}, {"t": 0.5}, {"t": 1.0, "yaw": 2}), "t", 2, "keyframe 0"),
    (_doc(), "keyframes", None, "empty"),
    ({"keyframes": {"t": 0}}, "keyframes", None, "must be a list"),
    (_doc([0.0, 0.5]), None, 0, "must be a mapping"),
    (_doc({"t": 0, "preset": "smile", "amount": 2}), "amount", 0, "outside [0, 1]"),
    (_doc({"t": 0, "preset": "smile", "amount": 1, "weight": 1}), "weight", 0, "not both"),
    (_doc({"t": 0, "amount": 0.5}), "amount", 0, "names none"),
    (_doc({"t": 0, "preset": "smile", "smile": 0.5}), "smile", 0, "twice"),
    (_doc({"t": 0, "preset": 3}), "preset", 0, "preset name"),
    (_doc({"t": 0, "smile": None}), "smile", 0, "must be a number"),
    (_doc({"t": 0, "_neutral": 1.0}), "_neutral", 0, "unknown key"),
    (_doc({"t": 0, "yaw": 1, "interpolation": "cubic"}), "interpolation", 0, "cubic"),
    (_doc({"t": 0, "yaw": 1}, interpolation="spline"), "interpolation", None, "spline"),
    (_doc({"t": 0, "yaw": 1}, mode="replace"), "mode", None, "replace"),
    (_doc({"t": 0, "yaw": 1}, modes={"yawn": "override"}), "yawn", None, "did you mean 'yaw'"),
    (_doc({"t": 0, "yaw": 1}, modes={"yaw": "overwrite"}), "yaw", None, "did you mean 'override'"),
    (_doc({"t": 0, "yaw": 1}, modes=["yaw"]), "modes", None, "must map"),
    ({"keyframe": [{"t": 0}]}, "keyframe", None, "did you mean 'keyframes'"),
    ([{"t": 0}], None, None, "top level"),
]


@pytest.mark.parametrize("doc, key, index, text", INVALID, ids=[f"{r[1]}-{r[3]}" for r in INVALID])
def test_invalid_input_raises_expression_error_naming_the_source_keyframe_and_key(doc, key, index, text):
    with pytest.raises(ExpressionError) as info:
        parse_expression(doc, source="keys.json")
    err, message = info.value, str(info.value)
    assert isinstance(err, ValueError) and err.key == key and err.keyframe == index
    assert message.startswith("keys.json: ") and text in message
    if key is not None:
        assert repr(key) in message or key in message
    if index is not None:
        assert f"keyframe {index}" in message


# --- files ---------------------------------------------------------------------------------------------------

DOC = {"interpolation": "smooth", "modes": {"yaw": "override"}, "keyframes": [
    {"t": 0.0, "jawOpen": 0.0, "yaw": 0}, {"t": 1.0, "preset": ["smile", "blink"], "amount": 0.7, "yaw": 15},
    {"t": 2.0, "x": 0.1, "y": -0.1, "z": 0.05, "interpolation": "linear"}]}


def test_yaml_and_json_give_the_same_track(tmp_path):
    (tmp_path / "k.json").write_text(json.dumps(DOC))
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(DOC))
    a, b = load_expression(tmp_path / "k.json"), load_expression(tmp_path / "k.yaml")
    assert a.keyframes == b.keyframes and (a.mode, a.modes, a.interpolation) == (b.mode, b.modes, b.interpolation)
    ma, mb = a.to_motion(60, FPS), b.to_motion(60, FPS)
    for field in ("blendshapes", "rotation", "translation"):
        np.testing.assert_array_equal(getattr(ma, field), getattr(mb, field))
    assert ma.translation[-1] == pytest.approx([0.1, -0.1, 0.05])


@pytest.mark.parametrize("name, text, expected", [
    ("bad.json", '{"keyframes": [\n  {"t": 0,\n   "jawOpen": }\n]}', "malformed JSON at line 3"),
    ("dup.json", '{"keyframes": [{"t": 0, "yaw": 1, "yaw": 2}]}', "duplicate key 'yaw'"),
    ("bad.yaml", "keyframes:\n  - {t: 0, jawOpen: 0.5\n  - {t: 1}\n", "malformed YAML at line 3"),
    ("empty.yml", "", "top level"),
    ("keys.txt", "{}", "unsupported file type"),
])
def test_malformed_files_raise_with_the_file_and_line(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ExpressionError) as info:
        load_expression(path)
    assert str(info.value).startswith(str(path)) and expected in str(info.value)


def test_missing_file_raises_expression_error(tmp_path):
    with pytest.raises(ExpressionError, match="cannot read"):
        load_expression(tmp_path / "nope.json")


@pytest.mark.parametrize("name", ["smile_nod.json", "look_around.yaml"])
def test_example_files_load(name):
    track = load_expression(EXAMPLES / name)
    m = track.to_motion(int(track.duration * FPS) + 1, FPS)
    assert track.duration >= 4.0 and np.abs(m.rotation).max() + m.blendshapes.max() > 0.5


# --- sliders -------------------------------------------------------------------------------------------------

def test_sliders_give_a_constant_motion():
    m = motion_from_sliders({"smile": 0.6, "yaw": 10, "browInnerUp": 0.3}, num_frames=12, fps=30)
    assert m.num_frames == 12 and m.fps == 30.0
    assert np.all(m.blendshapes == m.blendshapes[0]) and np.all(m.rotation == m.rotation[0])
    assert m.channel("mouthSmileLeft")[0] == pytest.approx(0.48) and m.channel("browInnerUp")[0] == pytest.approx(0.3)
    assert m.channel("yaw")[0] == pytest.approx(10.0) and m.channel("pitch")[0] == 0.0


def test_slider_track_layers_over_a_driver():
    out = apply_expression(base_motion(jawOpen=0.5, yaw=3.0), expression_from_sliders({"jawOpen": -0.2, "yaw": 5}))
    np.testing.assert_allclose(out.channel("jawOpen"), 0.3, atol=1e-6)
    np.testing.assert_allclose(out.channel("yaw"), 8.0)


@pytest.mark.parametrize("values, key", [
    ({"nod": 1.0}, "nod"), ({"smiel": 0.5}, "smiel"), ({"jawOpen": 1.2}, "jawOpen"), ({"jawOpen": -0.1}, "jawOpen"),
    ({"yaw": 90}, "yaw"), ({"smile": "lots"}, "smile"), ({"yaw": None}, "yaw"),
])
def test_invalid_sliders_raise_naming_the_slider(values, key):
    with pytest.raises(ExpressionError) as info:
        motion_from_sliders(values, 5, 25)
    assert info.value.key == key and key in str(info.value) and str(info.value).startswith("<sliders>")
