"""The JSON and table presentation of results."""

import json

from portrait_studio.evaluation import format_table, write_json


def test_json_turns_unmeasurable_values_into_null(tmp_path):
    write_json([{"video": "v.mp4", "lipsync": {"ncc": float("nan"), "curve": {0: float("inf")}}, "_series": {}}],
               tmp_path / "r.json")
    expected = [{"video": "v.mp4", "lipsync": {"ncc": None, "curve": {"0": None}}}]
    assert json.loads((tmp_path / "r.json").read_text()) == expected


def test_table_puts_videos_side_by_side():
    results = [{"video": "/x/a.mp4", "lipsync": {"ncc": 0.71, "lag_frames": -1, "lag_ms": -12.0},
                "drift": {"color_de2000": [0.0, 0.4, None], "cpbd": [0.5, 0.45]}},
               {"video": "/y/b.mp4", "lipsync": {"ncc": 0.2, "lag_frames": 7, "lag_ms": 281.0}}]
    lines = format_table(results).splitlines()
    assert lines[0].split() == ["a.mp4", "b.mp4"]
    row = {line[:30].strip(): line[30:].split() for line in lines[1:]}
    assert row["lip sync ncc"] == ["0.710", "0.200"] and row["lip sync lag (frames)"] == ["-1", "+7"]
    assert row["drift ΔE2000 face (max)"] == ["0.400", "-"]
    assert row["drift CPBD (first -> min)"] == ["0.500", "->", "0.450", "-"]
