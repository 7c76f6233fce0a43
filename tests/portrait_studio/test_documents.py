"""Keyframe, trajectory and track files are read within the limits; messages stay short."""

from __future__ import annotations

import json
import time
import tracemalloc

import numpy as np
import pytest

from portrait_studio.documents import (
    load_expression_file,
    load_track_file,
    load_trajectory_file,
    read_document,
)
from portrait_studio.errors import InputError
from portrait_studio.limits import LIMITS


def _write(path, text):
    path.write_text(text)
    return path


def test_yaml_alias_bomb_is_refused_fast_and_small(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x, x, x]"]  # 12 references per level, 9 levels: 12^10 values
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 12) + "]")
    lines.append("keyframes: *j")
    path = _write(tmp_path / "bomb.yaml", "\n".join(lines))
    assert path.stat().st_size < 800
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            load_expression_file(path, 600)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "yaml aliases" in str(info.value) and "100 aliases" in str(info.value)
    assert time.perf_counter() - start < 2 and peak < 20e6 and len(str(info.value)) < 300


def test_expanded_value_count_is_bounded(tmp_path):
    # few aliases, each doubling: 2^25 values once expanded
    lines = ["l0: &l0 [0, 0]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 25)] + ["keyframes: *l24"]
    with pytest.raises(InputError, match="document nodes"):
        load_expression_file(_write(tmp_path / "wide.yaml", "\n".join(lines)), 600)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_nesting_depth(tmp_path, suffix):
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(InputError, match="document depth"):
        read_document(_write(tmp_path / f"deep{suffix}", deep), "--expression")


def test_document_size(tmp_path):
    path = _write(tmp_path / "big.json", json.dumps({"keyframes": [{"t": 0}], "description": "x" * 1_200_000}))
    with pytest.raises(InputError, match=r"over the 1,000,000 bytes limit \(document bytes\)"):
        read_document(path, "--expression")


def test_keyframe_count_and_duration(tmp_path):
    many = {"keyframes": [{"t": i * 0.01} for i in range(int(LIMITS.keyframes.value) + 1)]}
    with pytest.raises(InputError, match="10,001 keyframes, over the 10,000 keyframes limit"):
        load_expression_file(_write(tmp_path / "many.json", json.dumps(many)), 600)
    late = _write(tmp_path / "late.json", json.dumps({"keyframes": [{"t": 0}, {"t": 1e9, "jawOpen": 1}]}))
    with pytest.raises(InputError, match="lasts 1000000000.0 s, over the --max-duration limit of 600 s"):
        load_expression_file(late, 600)
    assert load_expression_file(_write(tmp_path / "ok.json", json.dumps({"keyframes": [{"t": 2}]})), 600).duration == 2


def test_unbounded_values_stay_out_of_messages(tmp_path):
    path = _write(tmp_path / "long.json", json.dumps({"keyframes": "x" * 900_000}))
    with pytest.raises(InputError) as info:
        load_expression_file(path, 600)
    assert len(str(info.value)) <= 600


def test_trajectory_counts(tmp_path):
    too_many = {"trajectories": [[[1, 1]]] * 33}
    with pytest.raises(InputError, match="33 trajectories, over the 32 trajectories limit"):
        load_trajectory_file(_write(tmp_path / "t.json", json.dumps(too_many)), 100, 100)
    long = {"trajectories": [[[1, 1]] * 1001]}
    with pytest.raises(InputError, match="1,001 points, over the 1,000 points limit"):
        load_trajectory_file(_write(tmp_path / "p.json", json.dumps(long)), 100, 100)
    with pytest.raises(InputError, match="unsupported file type"):
        load_trajectory_file(_write(tmp_path / "t.yaml", "trajectories: []"), 100, 100)
    assert len(load_trajectory_file(_write(tmp_path / "ok.json", json.dumps({"trajectories": [[[1, 2], [3, 4]]]})),
                                    100, 100)) == 1


def _track(path, frames=10, fps=25.0, points=None, compressed=False):
    pts = np.zeros((frames, 68, 2), np.float32) if points is None else points
    (np.savez_compressed if compressed else np.savez)(path, points=pts, reference=np.zeros((68, 2), np.float32),
                                                      fps=np.float64(fps))
    return path


def test_track_limits(tmp_path):
    assert load_track_file(_track(tmp_path / "ok.npz"), 600).num_frames == 10
    for fps in (0.5, 1000.0, float("nan")):
        with pytest.raises(InputError, match=r"fps .*1\.\.120 \(fps range\)"):
            load_track_file(_track(tmp_path / "fps.npz", fps=fps), 600)
    with pytest.raises(InputError, match="lasts 4.0 s .*over the --max-duration limit of 2 s"):
        load_track_file(_track(tmp_path / "long.npz", frames=100), 2)
    bad = np.zeros((3, 68, 2), np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        load_track_file(_track(tmp_path / "nan.npz", frames=3, points=bad), 600)
    np.savez(tmp_path / "shape.npz", points=np.zeros((3, 5, 2)), reference=np.zeros((68, 2)), fps=25.0)
    with pytest.raises(InputError, match="not a landmark track"):
        load_track_file(tmp_path / "shape.npz", 600)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable landmark track"):
        load_track_file(tmp_path / "junk.npz", 600)


def test_track_header_is_checked_before_the_arrays(tmp_path, monkeypatch):
    # a track whose header claims 3.5 million frames (1.9 GB): refused from the header, nothing allocated
    import zipfile

    path = tmp_path / "claims.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 68, 2), np.float32))
    header["shape"] = (3_500_000, 68, 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("points.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(bytes(1 << 16))
        for name, arr in (("reference", np.zeros((68, 2), np.float32)), ("fps", np.float64(25))):
            with zf.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(arr))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="3,500,000 frames"):
            load_track_file(path, 600)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6
    # what the members unpack to is checked too (a zip bomb), from the zip directory
    from dataclasses import replace

    from portrait_studio import documents
    from portrait_studio.limits import Limit

    monkeypatch.setattr(documents, "LIMITS", replace(LIMITS, track_bytes=Limit(20_000, "bytes", "test")))
    with pytest.raises(InputError, match=r"unpacks to [\d,]+ bytes, over the 20,000 bytes limit"):
        load_track_file(_track(tmp_path / "big.npz", frames=60, compressed=True), 600)


@pytest.mark.parametrize("compressed", [False, True])
def test_damaged_tracks_are_input_errors(tmp_path, compressed):
    """Seeded damage of a saved track: read, or refused as an InputError (zlib, zip and .npy header errors)."""
    import io
    import random

    from .test_damaged_inputs import damage

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(
        buf, points=np.random.default_rng(0).random((20, 68, 2), np.float32) * 100,
        reference=np.zeros((68, 2), np.float32), fps=np.float64(25))
    rng, path = random.Random(5), tmp_path / "t.npz"
    for _ in range(300):
        path.write_bytes(damage(buf.getvalue(), rng)[0])
        try:
            load_track_file(path, 600)
        except InputError as exc:
            assert len(str(exc)) <= 600
