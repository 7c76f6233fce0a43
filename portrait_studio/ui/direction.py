"""Section 3, direction: head motion and expressiveness, timed expression keyframes, camera moves,
drags, motion brush and landmark mask drawn on the photo, and the flow they make, before any render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from .. import keyframes, preview, uploads
from ..controls import CAMERA_NAMES, CameraMove
from ..errors import InputError
from .canvas import DrawnControls, drawn_controls
from .portrait import PortraitChoice
from .state import Session

CAMERA_AMOUNTS = {"zoom": (0.02, 0.5, 0.15, "scale change"), "pan": (0.02, 0.3, 0.1, "of the frame"),
                  "rotate": (1.0, 20.0, 5.0, "degrees")}


@dataclass(frozen=True)
class Direction:
    """The direction, as the render options name it."""

    head_motion: float  # scale of the idle head motion
    expressiveness: float  # scale of brows and eye widening
    expression: Path | None  # keyframe JSON (in the session folder), None = no keyframes
    expression_duration: float  # seconds until the last keyframe (0 without keyframes)
    camera: str | None  # "NAME:AMOUNT" or None
    drawn: DrawnControls  # drags, motion brush and landmark mask files


def section(sess: Session, portrait: PortraitChoice) -> Direction:
    st.header("3 · Direction")
    left, right = st.columns(2)
    head = left.slider("Head motion", 0.0, 2.0, 1.0, 0.1, key="head_motion",
                       help="How much the head moves on its own while talking (0 = still).")
    expressive = right.slider("Expressiveness", 0.0, 2.0, 1.0, 0.1, key="expressiveness",
                              help="How much brows rise and eyes widen with the voice (blinks stay natural).")
    expression, duration = _keyframes(sess)
    camera = _camera()
    drawn = drawn_controls(sess, portrait)
    _flow_preview(portrait, drawn, camera)
    return Direction(head, expressive, expression, duration, camera, drawn)


# --------------------------------------------------------------------------------------------- keyframes
def _rows() -> list[dict]:
    return st.session_state.setdefault("kf_rows", [])


def _set_rows(rows: list[dict]) -> None:
    st.session_state["kf_rows"] = rows
    st.session_state["kf_version"] = st.session_state.get("kf_version", 0) + 1  # a fresh editor shows them


def _keyframes(sess: Session) -> tuple[Path | None, float]:
    st.subheader("Expressions over time")
    st.caption("Put an expression at a moment of the clip with the buttons, or edit the table "
               "(one row per keyframe, time in seconds; empty cells are not keyed).")
    at = st.number_input("At second", 0.0, 600.0, 0.0, 0.5, key="kf_time")
    amount = st.slider("Amount", 0.0, 1.0, 1.0, 0.1, key="kf_amount")
    names = keyframes.PRESET_NAMES
    for start in range(0, len(names), 6):
        cols = st.columns(6)
        for col, name in zip(cols[:len(names[start:start + 6])], names[start:start + 6], strict=True):
            if col.button(name.replace("_", " "), key=f"preset_{name}", width="stretch"):
                _set_rows(keyframes.insert_preset(_rows(), float(at), name, float(amount)))
    upload = st.file_uploader("Load keyframes (JSON, the format `--expression` reads)", type=["json"],
                              key="kf_upload")
    if upload is not None and st.session_state.get("kf_loaded") != upload.file_id:
        st.session_state["kf_loaded"] = upload.file_id
        try:
            if upload.size > uploads.LIMITS_MB["keyframes"] * uploads.MB:
                raise InputError(f"the keyframe file is over {uploads.LIMITS_MB['keyframes']} MB")
            rows, _ = keyframes.document_to_rows(keyframes.load_document(upload.getvalue()))
            _set_rows(rows)
        except InputError as exc:
            st.error(str(exc))
    rows = _rows()
    if not rows:
        return None, 0.0
    channels = [c for c in keyframes.DEFAULT_CHANNELS]
    channels += sorted({k for r in rows for k in r} - set(keyframes.FIXED_COLUMNS) - set(channels))
    table = [{c: r.get(c) for c in (*keyframes.FIXED_COLUMNS, *channels)} for r in rows]
    smooth = st.toggle("Smooth easing between keyframes", value=True, key="kf_smooth")
    edited = st.data_editor(
        table, num_rows="dynamic", key=f"kf_editor_{st.session_state.get('kf_version', 0)}",
        width="stretch",
        column_config={
            "t": st.column_config.NumberColumn("time (s)", min_value=0.0, step=0.1, required=True),
            "preset": st.column_config.SelectboxColumn("preset", options=list(names)),
            "amount": st.column_config.NumberColumn("amount", min_value=0.0, max_value=1.0, step=0.1),
            "interpolation": st.column_config.SelectboxColumn("easing", options=["linear", "smooth"]),
        })
    if st.button("Clear keyframes", key="kf_clear"):
        _set_rows([])
        st.rerun()
    try:
        document = keyframes.rows_to_document(list(edited), "smooth" if smooth else "linear")
        if not document["keyframes"]:
            return None, 0.0
        curves = keyframes.curves(document, duration=0.0)
    except InputError as exc:
        st.error(str(exc))
        return None, 0.0
    times = curves.pop("time")
    if curves:
        st.line_chart({"time (s)": times, **curves}, x="time (s)", y=list(curves), height=220)
    text = keyframes.document_json(document)
    path = sess.folder / "keyframes.json"
    path.write_text(text)
    with st.expander("Keyframe JSON (what `--expression` reads)"):
        st.code(text, language="json")
    st.download_button("Download keyframes (JSON)", text, file_name="keyframes.json", mime="application/json",
                       key="kf_download")
    return path, float(times[-1])


# --------------------------------------------------------------------------------------------- camera
def _camera() -> str | None:
    st.subheader("Camera move")
    name = st.selectbox("Camera", ("none", *CAMERA_NAMES), key="camera_name",
                        help="A move of the whole frame over the clip (zoom, pan, roll), on both engines.")
    if name == "none":
        return None
    lo, hi, default, unit = CAMERA_AMOUNTS[name.split("-")[0]]
    amount = st.slider(f"Amount ({unit})", lo, hi, default, key=f"camera_amount_{name.split('-')[0]}")
    return str(CameraMove(name, float(amount)))


# --------------------------------------------------------------------------------------------- flow
@st.cache_data(show_spinner=False, max_entries=16)
def _flow_picture(photo: str, mtime: float, landmarks: bytes, drags: str, brush: str | None, brush_mtime: float,
                  camera: str | None) -> np.ndarray:
    import json

    trajectories = [np.asarray(d, np.float64) for d in json.loads(drags)]
    points = np.frombuffer(landmarks, np.float32).reshape(68, 2)
    return preview.direction_flow(photo, points, trajectories=trajectories, brush_path=brush,
                                  camera=CameraMove.parse(camera) if camera else None)


def _flow_preview(portrait: PortraitChoice, drawn: DrawnControls, camera: str | None) -> None:
    if not drawn.drags and camera is None:
        return
    import json

    face = portrait.found.faces[portrait.face - 1]
    brush = str(drawn.brush) if drawn.brush is not None else None
    try:
        picture = _flow_picture(str(portrait.path), portrait.path.stat().st_mtime,
                                np.asarray(face.landmarks68, np.float32).tobytes(), json.dumps(drawn.drags), brush,
                                drawn.brush.stat().st_mtime if drawn.brush is not None else 0.0, camera)
    except (InputError, ValueError) as exc:
        st.error(" ".join(str(exc).split())[:300])
        return
    st.image(picture, width=320, caption="Where the background moves by the end of the clip "
                                         "(white = still; colour = direction; stronger = farther)")
