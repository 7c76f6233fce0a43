"""The studio's Live tab: the browser's webcam or microphone in (WebRTC), the portrait out.

    from portrait_studio.ui import live
    live.section(portrait_path)          # the studio's Live tab (ui/app.py), with the chosen portrait

One `LiveBridge` joins one WebRTC connection to one `LiveSession`: streamlit-webrtc calls
`on_video`/`on_audio` from its own threads with the browser's frames; each returned video frame is
the latest portrait frame the session made. The sliders steer the running session on every rerun
(they apply from the next frame); the latency and counters are shown under the video.
"""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import streamlit as st

from portrait_studio import Studio
from portrait_studio.live import POSE_PRESETS, LiveOptions, LiveSession

RTC_CONFIGURATION = {"iceServers": []}  # same machine or LAN: host candidates only, no STUN server needed


class LiveBridge:
    """One WebRTC connection <-> one live session (thread-safe callbacks)."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.driver = session.options.driver
        self._latest = np.ascontiguousarray(session.portrait.image)  # the still portrait until frames come
        self._lock = threading.Lock()
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=session.options.sample_rate)
        self._t0: float | None = None
        self._reader = threading.Thread(target=self._read, name="live-bridge", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for frame in self.session.frames():
            with self._lock:
                self._latest = frame.image

    def _clock(self) -> float:
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def on_video(self, frame: av.VideoFrame) -> av.VideoFrame:
        """A browser camera frame in; the latest portrait frame out (same timestamp)."""
        if self.driver == "video":
            self.session.push_video(frame.to_ndarray(format="rgb24"), self._clock())
        with self._lock:
            image = self._latest
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base or Fraction(1, 90000)
        return out

    def on_audio(self, frame: av.AudioFrame) -> av.AudioFrame:
        """A browser microphone frame in (resampled to the session's rate); passed back unchanged."""
        if self.driver == "audio":
            for chunk in self._resampler.resample(frame):
                self.session.push_audio(chunk.to_ndarray().reshape(-1), None)
        return frame

    def close(self) -> None:
        self.session.end()
        self.session.close()
        self._reader.join(timeout=5)


class _Holder:
    """What the WebRTC callbacks (other threads) reach: the current bridge, swapped by the page."""

    def __init__(self) -> None:
        self.bridge: LiveBridge | None = None

    def video(self, frame: av.VideoFrame) -> av.VideoFrame:
        bridge = self.bridge
        return bridge.on_video(frame) if bridge is not None else frame

    def audio(self, frame: av.AudioFrame) -> av.AudioFrame:
        bridge = self.bridge
        return bridge.on_audio(frame) if bridge is not None else frame


def _studio() -> Studio:
    """The studio's one Studio (models loaded once per server), shared with the render queue."""
    from .queue import render_queue

    return render_queue().studio


def section(portrait_path: str | Path | None) -> None:
    """Draw the Live tab for the portrait at `portrait_path` (None: ask for one first)."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    if portrait_path is None:
        st.info("Pick a portrait first (above).")
        return
    state = st.session_state
    holder: _Holder = state.setdefault("live_holder", _Holder())
    if not st.toggle("Go live", key="live_on", help="the portrait follows your camera or microphone in real time"):
        if holder.bridge is not None:  # switched off: end the session
            holder.bridge.close()
            holder.bridge = None
        st.info("Switch on, press START and allow the camera (and the microphone for voice driving).")
        return
    cols = st.columns(2)
    driver = cols[0].radio("Driven by", ["video", "audio"], horizontal=True, key="live_driver",
                           format_func=lambda d: {"video": "my face (webcam)", "audio": "my voice (microphone)"}[d])
    size = cols[1].select_slider("Frame size", [256, 384, 512], value=512, key="live_size")
    head = st.slider("Head motion", 0.0, 3.0, 1.0, 0.1, key="live_head")
    expressiveness = st.slider("Expressiveness", 0.0, 3.0, 1.0, 0.1, key="live_expr")
    articulation = st.slider("Articulation (voice)", 0.0, 2.0, 1.0, 0.1, key="live_artic")
    pcols = st.columns(2)
    preset = pcols[0].selectbox("Expression preset", ["none", *[p for p in POSE_PRESETS if p != "neutral"]],
                                key="live_preset")
    amount = pcols[1].slider("Preset amount", 0.0, 1.0, 0.6, 0.05, key="live_amount")
    wanted = (str(portrait_path), driver, size)
    if holder.bridge is not None and state.get("live_config") != wanted:
        holder.bridge.close()  # a new portrait, driver or size: a new session on the next start
        holder.bridge = None
    ctx = webrtc_streamer(key="live", mode=WebRtcMode.SENDRECV, rtc_configuration=RTC_CONFIGURATION,
                          media_stream_constraints={"video": True, "audio": driver == "audio"},
                          video_frame_callback=holder.video, audio_frame_callback=holder.audio,
                          sendback_audio=False, async_processing=True)
    if ctx.state.playing and holder.bridge is None:
        options = LiveOptions(driver=driver, size=size, head_motion=head, expressiveness=expressiveness,
                              articulation=articulation)
        holder.bridge = LiveBridge(_studio().live(portrait_path, options))
        state["live_config"] = wanted
    elif not ctx.state.playing and holder.bridge is not None:
        holder.bridge.close()
        holder.bridge = None
    bridge = holder.bridge
    if bridge is None:
        st.info("Press START and allow the camera (and the microphone for voice driving: the camera's "
                "frames pace the video that comes back).")
        return
    sliders = {preset: amount} if preset != "none" and amount > 0 else {}
    bridge.session.direct(head_motion=head, expressiveness=expressiveness, articulation=articulation, sliders=sliders)
    if driver == "video" and st.button("Set neutral (my face now = the photo)", key="live_neutral"):
        bridge.session.set_neutral()
    status = st.empty()
    while ctx.state.playing:  # Streamlit stops this loop on the next interaction (a rerun)
        s = bridge.session.stats()
        status.markdown(f"**{s.fps:.1f} fps** · latency p50 **{s.latency_p50_ms:.0f} ms**, "
                        f"p95 {s.latency_p95_ms:.0f} ms · frames {s.frames} · dropped {s.dropped}",
                        help="from the camera/microphone input reaching the server to the portrait frame")
        time.sleep(0.5)

