"""Property-style: randomly damaged media and option files never break the CLI's promise.

For every case: exit 0 with a valid video, or exit 2 with exactly one `error:` line; the inputs are
byte-identical afterwards; the output folder holds the output and nothing else. Seeded, bounded
(30 cases at --size 128 on a 0.5 s clip; DAMAGE_CASES=N runs more).
"""

from __future__ import annotations

import random

import pytest

from portrait_studio import cli

from .hardening_utils import (
    ROOT,
    SIZE,
    assert_one_error,
    face_crop,
    fingerprint,
    keyframes,
    run,
    short_audio,
    trajectory,
    video_frames,
)

CASES = int(__import__("os").environ.get("DAMAGE_CASES", "30"))


def damage(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random damage: truncate, flip bytes, splice a block elsewhere, or zero out the header."""
    kind = rng.choice(["truncate", "flip", "splice", "zero-header"])
    n = len(data)
    if kind == "truncate":
        return data[: rng.randrange(0, max(1, n))], kind
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(0, min(n, 256)) if rng.random() < 0.6 else rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf), kind
    if kind == "splice":
        a, b = sorted(rng.randrange(n) for _ in range(2))
        block = bytes(buf[a:b])[:4096]
        at = rng.randrange(n)
        return bytes(buf[:at]) + block + bytes(buf[at:]), kind
    end = rng.randint(4, min(n, 64))
    buf[:end] = bytes(end)
    return bytes(buf), kind


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pristine")
    face, speech = face_crop(folder / "face.png"), short_audio(folder / "speech.wav")
    track = folder / "track.npz"
    assert cli.main(["landmarks", "--image", str(face), "--audio", str(speech), "-o", str(track),
                     "--size", str(SIZE)]) == 0
    return {"track": track.read_bytes(),
            "image": face_crop(folder / "face.png").read_bytes(),
            "audio": short_audio(folder / "speech.wav").read_bytes(),
            "expression": keyframes(folder / "keys.json").read_bytes(),
            "yaml": (ROOT / "examples" / "expressions" / "look_around.yaml").read_bytes(),
            "trajectory": trajectory(folder / "drag.json").read_bytes()}


@pytest.mark.parametrize("case", range(CASES))
def test_damaged_input_keeps_the_promise(tmp_path, capsys, pristine, case):
    rng = random.Random(1000 + case)
    target = ["image", "audio", "expression", "trajectory", "track", "image", "audio", "yaml", "trajectory",
              "track"][case % 10]
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = {"image": "face.png", "audio": "speech.wav", "expression": "keys.json", "yaml": "keys.yaml",
             "trajectory": "drag.json", "track": "track.npz"}
    paths = {}
    for key, data in pristine.items():
        if key == target:
            data, _ = damage(data, rng)
        paths[key] = inputs / names[key]
        paths[key].write_bytes(data)
    before = fingerprint(paths.values())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "video.mp4"
    args = ["render", "--image", paths["image"], "-o", out, "--size", SIZE, "--engine", "warp"]
    if target not in ("expression", "yaml") or rng.random() < 0.5:
        args += ["--audio", paths["audio"]]
    if target in ("expression", "yaml"):
        args += ["--expression", paths[target]]
    if target == "track":
        args += ["--landmarks", paths["track"]]
    if target == "trajectory":
        args += ["--trajectory", paths["trajectory"]]
    code, _, err = run(capsys, *args)
    if code == 0:
        assert video_frames(out) > 0
        assert sorted(p.name for p in out_dir.iterdir()) == ["video.mp4"]
    else:
        assert_one_error(code, err)
        assert list(out_dir.iterdir()) == []
    assert fingerprint(paths.values()) == before
