"""Section 1, the portrait: upload, webcam or the bundled example; faces found, and which one moves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from .. import preview, uploads
from ..errors import InputError
from .state import Session, saved_upload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SOURCES = ("Example photo", "Upload a photo", "Take a photo")


@dataclass(frozen=True)
class PortraitChoice:
    """The photo and the face to animate."""

    path: Path  # the photo inside the session folder (or the bundled example)
    found: preview.FoundFaces  # its faces, left to right
    face: int  # 1-based number of the face to animate


@st.cache_data(show_spinner=False, max_entries=32)
def _faces(path: str, mtime: float) -> preview.FoundFaces:
    return preview.find_faces(path)


def section(sess: Session) -> PortraitChoice | None:
    """Draw the portrait section; the chosen photo and face, or None until there is a usable one."""
    st.header("1 · Portrait")
    source = st.radio("Where does the photo come from?", SOURCES, horizontal=True, key="photo_source")
    path = None
    if source == SOURCES[0]:
        path = EXAMPLES / "portrait.png"
    elif source == SOURCES[1]:
        limit = uploads.LIMITS_MB["image"]
        upload = st.file_uploader(f"A photo with a face: JPEG, PNG or WebP, up to {limit} MB",
                                  type=["jpg", "jpeg", "png", "webp"], key="photo_upload")
        path = _save(sess, "photo", upload)
    else:
        shot = st.camera_input("Look at the camera, then take the photo", key="photo_camera")
        path = _save(sess, "photo", shot)
    if path is None:
        st.info("Choose a photo to start.")
        return None
    try:
        found = _faces(str(path), path.stat().st_mtime)
    except InputError as exc:
        st.error(str(exc))
        return None
    face = found.largest
    if len(found.faces) > 1:
        face = st.radio(f"{len(found.faces)} faces found, numbered from the left. Which one talks?",
                        list(range(1, len(found.faces) + 1)), index=found.largest - 1, horizontal=True,
                        format_func=lambda n: f"Face {n}" + (" (largest)" if n == found.largest else ""),
                        key="face_number")
    st.image(preview.draw_faces(found, face), caption="The face that will move (green) and its landmarks",
             width=420)
    return PortraitChoice(path, found, face)


def _save(sess: Session, role: str, upload) -> Path | None:
    """Check and save an uploaded photo once; show a one-line message when it is not usable."""
    if upload is None:
        return None
    known = saved_upload(sess, role, upload)
    if known is not None:
        return known
    try:
        saved = uploads.save_image(upload.getvalue(), sess.folder, stem=role)
    except InputError as exc:
        st.error(str(exc))
        return None
    sess.uploads[role] = (upload.file_id, saved.path)
    return saved.path
