"""Drawing on the photo: drags (trajectories), the motion brush and the landmark mask, in photo pixels.

Uses the `streamlit-drawable-canvas` component; the drawing is converted by `portrait_studio.sketch`
into the same files the CLI reads (`--trajectory`, `--motion-brush`, `--landmark-mask`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
from PIL import Image

from .. import sketch
from .portrait import PortraitChoice
from .state import Session

CANVAS_WIDTH = 480  # px the photo is shown at while drawing


@dataclass(frozen=True)
class DrawnControls:
    """What was drawn, saved in the session folder."""

    drags: list = field(default_factory=list)  # [[[x, y], ...], ...] photo pixels
    trajectory: Path | None = None  # the --trajectory JSON
    brush: Path | None = None  # the --motion-brush PNG
    landmark_mask: Path | None = None  # the --landmark-mask PNG


def _canvas():
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # noqa: BLE001 - the component is optional; the page says so
        return None
    return st_canvas


def drawn_controls(sess: Session, portrait: PortraitChoice) -> DrawnControls:
    st.subheader("Move the background")
    st_canvas = _canvas()
    if st_canvas is None:
        st.info("Drawing needs the `streamlit-drawable-canvas` component (pip install 'portrait-studio[ui]').")
        return DrawnControls()
    photo = portrait.found.photo
    height, width = photo.shape[:2]
    scale = CANVAS_WIDTH / width
    shown = Image.fromarray(photo).resize((CANVAS_WIDTH, max(1, round(height * scale))))
    tool = st.radio("Draw", ("Drags", "Motion brush", "Landmark mask"), horizontal=True, key="draw_tool",
                    help="Drags: draw a stroke from where something is to where it should go by the end. "
                         "Motion brush: paint the region the drags move (default: a soft area around each). "
                         "Landmark mask (MOFA engine): paint what moves with the face.")
    styles = {"Drags": ("freedraw", 3, "#ff3030"), "Motion brush": ("freedraw", 28, "rgba(40,160,255,0.5)"),
              "Landmark mask": ("freedraw", 28, "rgba(60,220,90,0.5)")}
    mode, width_px, colour = styles[tool]
    drawings = st.session_state.setdefault("drawings", {})
    result = st_canvas(stroke_width=width_px, stroke_color=colour, background_image=shown, drawing_mode=mode,
                       height=shown.height, width=shown.width, initial_drawing=drawings.get(tool),
                       key=f"canvas_{tool}_{portrait.path.name}")
    if result is not None and result.json_data is not None:
        drawings[tool] = result.json_data
    size = (height, width)
    drags = sketch.drawing_trajectories(drawings.get("Drags"), scale, size)
    brush_mask = sketch.drawing_mask(drawings.get("Motion brush"), scale, size)
    face_mask = sketch.drawing_mask(drawings.get("Landmark mask"), scale, size)
    out = DrawnControls(drags=drags)
    if drags:
        out = DrawnControls(drags, sketch.write_trajectories(drags, sess.folder / "trajectory.json"))
        if brush_mask.any():
            out = DrawnControls(drags, out.trajectory, sketch.write_mask(brush_mask, sess.folder / "brush.png"))
    if face_mask.any():
        out = DrawnControls(out.drags, out.trajectory, out.brush,
                            sketch.write_mask(face_mask, sess.folder / "landmark_mask.png"))
    st.caption(f"{len(drags)} drag(s)" + (", motion brush painted" if out.brush else "")
               + (", landmark mask painted" if out.landmark_mask else ""))
    return out
