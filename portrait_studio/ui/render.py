"""Section 4: the engine panel, Preview (first 3 s, warp engine), Render with a progress bar per stage and
Cancel, then the video, its download and the session's list of renders."""

from __future__ import annotations

import time
import weakref
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import get_args

import streamlit as st

from ..ckpts import check_ckpts
from ..errors import InputError
from ..options import MofaMode, MofaOptions, RenderOptions, TemporalContext
from ..render_queue import RenderJob
from .direction import Direction
from .driver import KINDS, DriverChoice
from .portrait import PortraitChoice
from .queue import render_queue
from .state import RenderRecord, Session

PREVIEW_SECONDS = 3.0
STAGE_NAMES = {"load": "Loading models", "driver": "Driving the face", "flow": "Motion flow",
               "denoise": "Diffusion", "render": "Rendering frames", "mux": "Adding the sound"}


@st.cache_data(show_spinner=False, ttl=60)
def _ckpt_report() -> tuple[bool, str, list[str]]:
    report = check_ckpts(None, deep=False)
    return report.ok, str(report.root), [f"{f.spec.key}: {f.status}" for f in report.problems]


def _engine_panel() -> tuple[str, int, MofaOptions]:
    ok, root, problems = _ckpt_report()
    with st.expander("Engine", expanded=False):
        if ok:
            st.success(f"MOFA-Video checkpoints verified in {root}.")
        else:
            st.warning(f"MOFA-Video checkpoints are not complete in {root} ({len(problems)} file(s) missing or "
                       "wrong): renders use the warp engine, which needs no weights. "
                       "`python -m portrait_studio check-ckpts` lists them.")
        engine = st.radio("Engine", ("auto", "warp", "mofa"), horizontal=True, key="engine",
                          help="auto: MOFA when its checkpoints verify and a GPU is present, else warp.")
        size = st.select_slider("Video size (short side, px)", (256, 384, 512, 768), value=512, key="size")
        mofa = MofaOptions()
        if engine != "warp":
            c1, c2, c3 = st.columns(3)
            steps = c1.number_input("Steps", 1, 200, mofa.steps, key="mofa_steps")
            gmin = c2.number_input("Guidance min", 0.1, 20.0, mofa.guidance_min, 0.1, key="mofa_gmin")
            gmax = c3.number_input("Guidance max", 0.1, 20.0, mofa.guidance_max, 0.1, key="mofa_gmax")
            c4, c5, c6 = st.columns(3)
            lscale = c4.number_input("Landmark adapter scale", 0.0, 5.0, mofa.landmark_scale, 0.1, key="mofa_ls")
            tscale = c5.number_input("Trajectory adapter scale", 0.0, 5.0, mofa.trajectory_scale, 0.1, key="mofa_ts")
            window = c6.radio("Window (frames)", (25, 14), key="mofa_window", horizontal=True)
            helps = {f.name: f.metadata.get("help") for f in fields(MofaOptions)}
            c7, c8 = st.columns(2)
            mode = c7.radio("MOFA mode", get_args(MofaMode), key="mofa_mode", horizontal=True, help=helps["mode"])
            layout = c8.radio("Temporal context", get_args(TemporalContext), key="mofa_temporal_context",
                              horizontal=True, help=helps["temporal_context"])
            mofa = replace(mofa, steps=int(steps), guidance_min=float(gmin), guidance_max=float(gmax),
                           landmark_scale=float(lscale), trajectory_scale=float(tscale), window=int(window),
                           mode=mode, temporal_context=layout)
    return engine, int(size), mofa


def build_options(portrait: PortraitChoice, driver: DriverChoice, direction: Direction, engine: str, size: int,
                  mofa: MofaOptions, preview: bool) -> RenderOptions:
    """The widgets' values as render options (preview: warp engine, the first 3 s, at most 384 px)."""
    drawn = direction.drawn
    if direction.drawn.landmark_mask is not None:
        mofa = replace(mofa, landmark_mask=drawn.landmark_mask)
    options = RenderOptions(
        engine="warp" if preview else engine, size=min(size, 384) if preview else size,
        transcript=driver.transcript, head_motion=direction.head_motion, expressiveness=direction.expressiveness,
        trajectory=drawn.trajectory, motion_brush=drawn.brush if drawn.trajectory is not None else None,
        driving_video=driver.driving_video, relative_to=driver.relative_to, expression=direction.expression,
        camera=direction.camera, face=portrait.face if len(portrait.found.faces) > 1 else None,
        duration=PREVIEW_SECONDS if preview else None, mofa=mofa)
    return options.validate()


def section(sess: Session, portrait: PortraitChoice | None, driver: DriverChoice, direction: Direction | None) -> None:
    st.header("4 · Preview and render")
    engine, size, mofa = _engine_panel()
    job: RenderJob | None = sess.job
    if job is not None:
        _watch(sess, job)
    ready = portrait is not None and direction is not None and driver.ready
    missing = None
    if portrait is None:
        missing = "Choose a photo with a face in section 1."
    elif not driver.ready:
        missing = "Add speech or a driving video in section 2."
    elif driver.kind == KINDS[2] and (direction is None or direction.expression is None):
        missing = "Keyframes only: add at least one keyframe in section 3."
        ready = False
    if missing:
        st.info(missing)
    c1, c2 = st.columns(2)
    preview = c1.button(f"Preview (first {PREVIEW_SECONDS:g} s, fast)", disabled=not ready or sess.job is not None,
                        key="preview", width="stretch")
    full = c2.button("Render the video", type="primary", disabled=not ready or sess.job is not None, key="render",
                     width="stretch")
    if (preview or full) and ready:
        try:
            options = build_options(portrait, driver, direction, engine, size, mofa, preview=preview)
        except InputError as exc:
            st.error(str(exc))
        else:
            _start(sess, portrait, driver, options, "Preview" if preview else f"Render #{_count(sess) + 1}")
            _watch(sess, sess.job)
    _history(sess)


def _count(sess: Session) -> int:
    return sum(not r.label.startswith("Preview") for r in sess.renders)


def _start(sess: Session, portrait: PortraitChoice, driver: DriverChoice, options: RenderOptions, label: str) -> None:
    out = sess.folder / f"{label.lower().replace(' ', '_').replace('#', '')}_{int(time.time() * 1000)}.mp4"

    def render(studio, progress, cancel):
        return studio.render(portrait.path, driver.audio, out, options=options, progress=progress, cancel=cancel)

    job = RenderJob(render_queue(), owner=sess.folder.name, render=render)
    job.label, job.options, job.out = label, options, out
    weakref.finalize(sess, job.cancel.set)  # a session that ends mid-render gives the device back
    sess.job = job.start()


def _watch(sess: Session, job: RenderJob) -> None:
    """Show the job's place or progress until it ends (a Cancel click reruns the page and sets `cancel`)."""
    slot = st.empty()  # emptied when the job ends: the video takes its place
    box = slot.container(border=True)
    box.markdown(f"**{job.label}**")
    if box.button("Cancel", key="cancel"):
        job.cancel.set()
    status = box.empty()
    bars: dict[str, object] = {}
    while not job.wait(0.2):
        if job.place:
            status.info(f"Waiting for the render device: place {job.place} in the queue "
                        f"({job.ahead} render(s) ahead of yours, from other sessions).")
        elif job.cancel.is_set():
            status.warning("Cancelling...")
        else:
            status.empty()
        for stage, (done, total) in list(job.stages.items()):
            if stage not in bars:
                bars[stage] = box.progress(0.0)
            frac = done / total if total else 0.0
            bars[stage].progress(min(frac, 1.0), text=f"{STAGE_NAMES.get(stage, stage)}: {done}/{total}")
    slot.empty()
    sess.job = None
    if job.cancelled:
        st.warning(f"{job.label} cancelled; nothing was written.")
    elif job.error:
        st.error(job.error)
    else:
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(job.options).items()
                    if v is not None and k != "mofa"}
        sess.renders.append(RenderRecord(job.label, job.out, settings, job.finished - job.started, job.waited))


def _history(sess: Session) -> None:
    if not sess.renders:
        return
    latest = sess.renders[-1]
    st.subheader(latest.label)
    st.video(str(latest.path))
    waited = f", after waiting for {latest.waited} render(s) ahead" if latest.waited else ""
    st.caption(f"Made in {latest.seconds:.1f} s{waited}.")
    st.download_button("Download the video", latest.path.read_bytes(), file_name=f"{latest.label.lower()}.mp4"
                       .replace(" ", "_").replace("#", ""), mime="video/mp4", key=f"download_{len(sess.renders)}")
    if len(sess.renders) > 1:
        st.subheader("Earlier in this session")
        for i, record in enumerate(reversed(sess.renders[:-1])):
            with st.expander(f"{record.label} · {record.seconds:.1f} s"):
                st.video(str(record.path))
                st.json(record.settings, expanded=False)
                st.download_button("Download", record.path.read_bytes(), file_name=record.path.name,
                                   mime="video/mp4", key=f"download_old_{i}")
