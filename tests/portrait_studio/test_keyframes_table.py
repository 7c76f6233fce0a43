"""The studio's keyframe table <-> the CLI's keyframe JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landmark_drivers.expressions import load_expression
from portrait_studio import keyframes
from portrait_studio.errors import InputError
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "expressions" / "smile_nod.json"


def test_round_trip_of_the_example_file(tmp_path):
    document = json.loads(EXAMPLE.read_text())
    rows, channels = keyframes.document_to_rows(document)
    assert [r["t"] for r in rows] == [k["t"] for k in document["keyframes"]]
    assert "smile" in channels  # a preset keyed as a key keeps its own column
    back = keyframes.rows_to_document(rows, document.get("interpolation", "linear"), document.get("mode", "add"))
    path = tmp_path / "k.json"
    path.write_text(keyframes.document_json(back))
    original, again = load_expression(EXAMPLE), load_expression(path)
    a, b = original.to_motion(150, 25.0), again.to_motion(150, 25.0)
    assert np.allclose(a.blendshapes, b.blendshapes) and np.allclose(a.rotation, b.rotation)


def test_preset_buttons_insert_keyframes_in_time_order():
    rows = keyframes.insert_preset([], 2.0, "nod", 0.5)
    rows = keyframes.insert_preset(rows, 1.0, "smile")
    rows = keyframes.insert_preset(rows, 1.0, "blink")  # same time, another preset: keyed beside it
    document = keyframes.rows_to_document(rows + [{"t": None, "preset": None}])  # an empty editor row
    assert document["keyframes"] == [{"t": 1.0, "preset": "smile", "amount": 1.0, "blink": 1.0},
                                     {"t": 2.0, "preset": "nod", "amount": 0.5}]
    curves = keyframes.curves(document, duration=3.0)
    assert curves["time"][-1] >= 3.0 and "pitch" in curves and "mouthSmileLeft" in curves
    assert curves["mouthSmileLeft"][-1] > 0.5 and np.abs(curves["pitch"]).max() > 3  # the smile holds; a nod


@pytest.mark.parametrize("rows, words", [
    ([{"t": -1.0, "jawOpen": 0.5}], "keyframe"),
    ([{"t": 1.0, "jawOpen": 7.0}], "jawOpen"),
    ([{"t": 1.0, "preset": "dance"}], "dance"),
])
def test_bad_rows_are_one_line(rows, words):
    with pytest.raises(InputError) as err:
        keyframes.rows_to_document(rows)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_files_and_presets():
    with pytest.raises(InputError, match="not valid JSON"):
        keyframes.load_document(b"{nope")
    with pytest.raises(InputError, match="must hold a JSON object"):
        keyframes.load_document(b"[1, 2]")
    with pytest.raises(InputError, match="unknown preset"):
        keyframes.insert_preset([], 0.0, "moonwalk")
