"""Section 2, what drives the face: speech (upload, record, example), a driving video, or keyframes alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from .. import preview, uploads
from ..errors import InputError
from .portrait import EXAMPLES
from .state import Session, saved_upload

KINDS = ("Speech", "Driving video", "Keyframes only")
SPEECH_SOURCES = ("Example speech", "Upload a recording", "Record now")
MAX_DURATION = 120.0  # seconds of speech or video the studio accepts


@dataclass(frozen=True)
class DriverChoice:
    """The driving inputs, as the render options name them."""

    kind: str  # one of KINDS
    audio: Path | None = None  # speech file
    transcript: str | None = None  # what is said (English), for forced alignment
    driving_video: Path | None = None  # face video to puppet the portrait with
    relative_to: str = "first"  # "first" or "neutral" frame of the driving video as the zero

    @property
    def ready(self) -> bool:
        """Whether there is something to drive with (keyframes alone are checked in section 3)."""
        return self.kind == KINDS[2] or self.audio is not None or self.driving_video is not None


@st.cache_data(show_spinner=False, max_entries=32)
def _wave(path: str, mtime: float):
    return preview.waveform(path, max_duration=MAX_DURATION)


def section(sess: Session) -> DriverChoice:
    """Draw the driver section; returns what was chosen (maybe not ready yet)."""
    st.header("2 · Voice or driver")
    kind = st.radio("What makes the face move?", KINDS, horizontal=True, key="driver_kind",
                    help="Speech: lips, blinks and head follow the voice. Driving video: the face copies "
                         "another face. Keyframes only: the expressions you set in section 3.")
    if kind == KINDS[0]:
        return _speech(sess)
    if kind == KINDS[1]:
        return _video(sess)
    st.caption("The keyframes of section 3 drive the face alone; the clip lasts until the last keyframe.")
    return DriverChoice(kind)


def _speech(sess: Session) -> DriverChoice:
    source = st.radio("Speech", SPEECH_SOURCES, horizontal=True, key="speech_source", label_visibility="collapsed")
    path, transcript = None, ""
    if source == SPEECH_SOURCES[0]:
        path = EXAMPLES / "speech.wav"
        transcript = (EXAMPLES / "speech.txt").read_text().strip()
    elif source == SPEECH_SOURCES[1]:
        limit = uploads.LIMITS_MB["audio"]
        upload = st.file_uploader(f"A voice recording (WAV, MP3, M4A, OGG, FLAC), up to {limit} MB and "
                                  f"{MAX_DURATION:g} s", type=["wav", "mp3", "m4a", "ogg", "flac", "webm", "aac"],
                                  key="speech_upload")
        path = _save_media(sess, "speech", upload, uploads.save_audio)
    else:
        recording = st.audio_input("Record your voice", key="speech_record")
        path = _save_media(sess, "speech", recording, uploads.save_audio)
    if path is None:
        return DriverChoice(KINDS[0])
    times, peaks, duration = _wave(str(path), path.stat().st_mtime)
    st.area_chart({"time (s)": times, "level": peaks}, x="time (s)", y="level", height=120)
    st.caption(f"{duration:.1f} s of speech")
    text = st.text_area("Transcript (optional, English): what is said, for sharper lip sync", value=transcript,
                        key=f"transcript_{source}", height=68, max_chars=5000)
    return DriverChoice(KINDS[0], audio=path, transcript=text.strip() or None)


def _video(sess: Session) -> DriverChoice:
    limit = uploads.LIMITS_MB["video"]
    upload = st.file_uploader(f"A video of a face (MP4, MOV, WebM, MKV), up to {limit} MB and {MAX_DURATION:g} s",
                              type=["mp4", "mov", "webm", "mkv", "avi"], key="video_upload")
    path = _save_media(sess, "driving", upload, uploads.save_video)
    relative = st.radio("The portrait's own expression matches the video's", ("first frame", "most neutral frame"),
                        horizontal=True, key="relative_to")
    if path is not None:
        st.video(str(path))
    return DriverChoice(KINDS[1], driving_video=path, relative_to="first" if relative == "first frame" else "neutral")


def _save_media(sess: Session, role: str, upload, saver) -> Path | None:
    if upload is None:
        return None
    known = saved_upload(sess, role, upload)
    if known is not None:
        return known
    try:
        saved = saver(upload.getvalue(), sess.folder, MAX_DURATION, stem=role)
    except InputError as exc:
        st.error(str(exc))
        return None
    sess.uploads[role] = (upload.file_id, saved.path)
    return saved.path
