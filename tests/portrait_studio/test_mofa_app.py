"""The MOFA engine in the app, on a tiny random-weight checkpoint tree in the published layout (CPU).

End to end through the CLI: loading (fp16 variant files, `module.` CMP checkpoint with its size read
off the shapes), landmark flow through CMP, pose images, landmark mask, drags + motion brush,
periodic sampling, streamed decode, mp4 + AAC. Spies on `MofaPipeline.__call__` check what the
sampler was given against the reference helpers (spec §2).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from landmark_drivers import LandmarkTrack
from mofa_engine.models.cmp import CMP, CMPCheckpointError, infer_config
from mofa_engine.models.flow_adapter import TrajectoryAdapter
from mofa_engine.pipeline.pipeline import MofaPipeline
from mofa_engine.pipeline.pose_image import draw_pose_images
from mofa_engine.regions import face_region_mask
from mofa_engine.sparse_flow import flow_from_grid, keypoint_sparse_flow_384
from mofa_engine.drag_hints import combine_brush_flows, scale_in_brush_flow, trajectory_sparse_flow
from mofa_engine.trajectories import brush_to_grid
from portrait_studio import cli
from portrait_studio.ckpts import CMP_CKPT, SVD, load_manifest
from portrait_studio.errors import InputError
from portrait_studio.engines.mofa import load_pipeline, mofa_frames, resolve_device
from portrait_studio.options import MofaOptions, RenderOptions
from portrait_studio.portrait import Framing
from portrait_studio.controls import MotionControls, load_controls

from tests.mofa_engine.tiny_configs import FRONTAL_FACE_68

from .media_utils import probe_video, read_frames
from .tiny_mofa_tree import TINY_CMP, write_tiny_tree

pytestmark = pytest.mark.slow

SIZE = 64  # output side: latents 8x8; the photo below is cropped so the face still measures > 24 px
PHOTO = 144  # side of the face crop of examples/portrait.png (eye corners ~27 px apart at SIZE)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_tiny_tree(tmp_path_factory.mktemp("mofa_tree"))


@pytest.fixture(scope="module")
def photo(tmp_path_factory, portrait_path):
    path = tmp_path_factory.mktemp("photo") / "face.png"
    Image.open(portrait_path).convert("RGB").crop((153, 61, 153 + PHOTO, 61 + PHOTO)).save(path)
    return path


@pytest.fixture(scope="module")
def speech(tmp_path_factory, speech_path):
    """Cuts of the bundled speech: {seconds: path}."""
    from portrait_studio.media import ffmpeg_exe

    folder = tmp_path_factory.mktemp("audio")
    cuts = {}
    for seconds in (0.4, 0.8, 1.2):
        cuts[seconds] = folder / f"speech_{seconds}.wav"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", "0.5", "-i", str(speech_path), "-t", str(seconds),
                        str(cuts[seconds])], check=True)
    return cuts


class Spy:
    """Records what `MofaPipeline.__call__` receives and returns, and CMP image encodings per call."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        self.encodes = 0
        self.trajectory_flows: list[torch.Tensor] = []
        call, encode, spy = MofaPipeline.__call__, CMP.encode_image, self

        def recording_call(pipe, *args, **kwargs):
            hook = pipe.trajectory_adapter.register_forward_hook(
                lambda m, a, kw, out: spy.trajectory_flows.append(kw["controlnet_flow"]), with_kwargs=True)
            try:
                out = call(pipe, *args, **kwargs)
            finally:
                hook.remove()
            spy.calls.append({"pipe": pipe, "kwargs": kwargs, "latents": out.frames, "windows": out.windows,
                              "encodes": spy.encodes})
            return out

        def counting_encode(cmp, image):
            spy.encodes += 1
            return encode(cmp, image)

        monkeypatch.setattr(MofaPipeline, "__call__", recording_call)
        monkeypatch.setattr(CMP, "encode_image", counting_encode)


def render(tmp_path, tree, photo, audio, *extra, name="out.mp4"):
    out = tmp_path / name
    code = cli.main(["render", "--image", str(photo), "--audio", str(audio), "-o", str(out), "--engine", "mofa",
                     "--ckpt-dir", str(tree), "--device", "cpu", "--size", str(SIZE), "--window", "14",
                     *map(str, extra)])
    return code, out


def framing() -> Framing:
    return Framing.fit(PHOTO, PHOTO, SIZE, 64)


# ------------------------------------------------------------------------------ end to end through the CLI
def test_long_clip_renders_with_periodic_sampling(tmp_path, monkeypatch, tree, photo, speech):
    """Hybrid, 1.2 s at 25 fps = 30 frames, windows of 14: 4 windows, a real mp4 with AAC, inputs per spec §2."""
    spy = Spy(monkeypatch)
    lm = tmp_path / "lm.npz"
    code, out = render(tmp_path, tree, photo, speech[1.2], "--steps", "2", "--save-landmarks", lm,
                       "--mofa-mode", "hybrid")
    assert code == 0
    p = probe_video(out)
    assert (p.video_codec, p.audio_codec, p.width, p.height) == ("h264", "aac", SIZE, SIZE)
    assert p.frames == round(1.2 * 25) == 30
    frames = read_frames(out)
    assert frames.shape == (30, SIZE, SIZE, 3) and frames.std() > 1  # random weights: not a flat picture
    assert sorted(x.name for x in tmp_path.iterdir()) == ["lm.npz", "out.mp4"]  # no temporaries left

    (call,) = spy.calls
    kw, pipe = call["kwargs"], call["pipe"]
    assert call["windows"] == [(1, 14), (8, 21), (15, 28), (17, 30)]
    assert torch.isfinite(call["latents"]).all() and call["latents"].shape == (1, 30, 4, 8, 8)
    assert kw["num_inference_steps"] == 2 and kw["window_size"] == 14 and kw["output_type"] == "latent"
    assert call["encodes"] == 1  # CMP's image encoder ran once for the whole clip
    # landmark flow: Eq. 2 hints at 384 -> CMP -> nearest up + axis scaling, kept on the latent grid
    track = LandmarkTrack.load(lm)
    image = kw["image"]
    sparse, mask = keypoint_sparse_flow_384(track.points, SIZE, SIZE)
    expected = pipe.cmp.densify(image, sparse, mask)[..., ::8, ::8]
    assert kw["landmark_flow"].shape == (1, 29, 2, 8, 8)
    torch.testing.assert_close(kw["landmark_flow"][0], expected, rtol=1e-4, atol=1e-4)
    # pose images drawn per window; default mask = the head region; no drags -> zero trajectory flow
    frames_asked = torch.tensor([0, 17, 29])
    torch.testing.assert_close(kw["pose_images"](frames_asked), draw_pose_images(track.points[[0, 17, 29]], SIZE, SIZE))
    head = face_region_mask(track.reference, SIZE, SIZE, threshold=0.5)
    torch.testing.assert_close(kw["landmark_mask"][0, 0], torch.from_numpy(head))
    assert kw["trajectory_flow"] is None
    assert spy.trajectory_flows and all(not f.any() for f in spy.trajectory_flows)
    torch.testing.assert_close(image[0].permute(1, 2, 0), torch.tensor(framed_photo(photo)).float() / 255)


def test_landmark_only_clip_runs_keypoint_mode_by_default(tmp_path, monkeypatch, tree, photo, speech):
    """auto without drags, brush or mask = Keypoint: the landmark adapter alone over the whole frame, one
    adapter per window step (no trajectory adapter, no mask), with periodic sampling."""
    spy = Spy(monkeypatch)
    calls, forward = [], TrajectoryAdapter.forward
    monkeypatch.setattr(TrajectoryAdapter, "forward", lambda *a, **kw: calls.append(1) or forward(*a, **kw))
    code, out = render(tmp_path, tree, photo, speech[0.8], "--steps", "2", "--temporal-context", "trained")
    assert code == 0 and probe_video(out).frames == 20
    (call,) = spy.calls
    kw = call["kwargs"]
    assert kw["landmark_mask"] is None and kw["trajectory_flow"] is None and not calls
    assert call["windows"] == [(1, 14), (7, 20)] and kw["temporal_context"] == "trained"
    code, out = render(tmp_path, tree, photo, speech[0.8], "--steps", "1", "--mofa-mode", "hybrid", name="h.mp4")
    assert code == 0 and len(spy.calls) == 2 and spy.calls[1]["kwargs"]["landmark_mask"] is not None and calls
    assert spy.calls[1]["kwargs"]["temporal_context"] == "reference"  # the default


def test_keypoint_mode_refuses_background_controls(tmp_path, capsys, tree, photo, speech):
    traj = tmp_path / "drag.json"
    traj.write_text(json.dumps({"trajectories": [[[20, 110], [44, 124]]]}))
    code, out = render(tmp_path, tree, photo, speech[0.4], "--mofa-mode", "keypoint", "--trajectory", traj)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [err[0]] and err[0].startswith("error: --mofa-mode keypoint") and not out.exists()


def framed_photo(photo) -> np.ndarray:
    """The portrait as the Studio frames it for the mofa engine: uint8 [SIZE, SIZE, 3]."""
    return framing().apply_image(np.asarray(Image.open(photo).convert("RGB")))


def test_drag_with_motion_brush(tmp_path, monkeypatch, tree, photo, speech):
    """A drag starting inside the brush moves the brushed region only (spec §2.3), in photo coordinates."""
    spy = Spy(monkeypatch)
    traj = tmp_path / "drag.json"
    traj.write_text(json.dumps({"trajectories": [[[20, 110], [30, 118], [44, 124]]]}))
    brush = np.zeros((PHOTO, PHOTO), np.uint8)
    brush[90:140, 0:60] = 255  # lower-left corner of the photo (the shoulder)
    brush_path = tmp_path / "brush.png"
    Image.fromarray(brush).save(brush_path)
    code, out = render(tmp_path, tree, photo, speech[0.8], "--steps", "1", "--trajectory", traj,
                       "--motion-brush", brush_path)
    assert code == 0 and probe_video(out).frames == 20
    (call,) = spy.calls
    kw, pipe = call["kwargs"], call["pipe"]
    assert call["encodes"] == 1  # one encoding shared by the landmark flow and the drag flow
    flow = kw["trajectory_flow"]
    assert flow.shape == (1, 19, 2, 8, 8)
    # the reference chain on the whole 25-point drag (spec §2.3), truncated to the clip's 19 flows
    controls = load_controls(traj, brush_path, framing())
    f_in, m_in, f_out, m_out = trajectory_sparse_flow(controls.trajectories, controls.brush, SIZE, SIZE)
    assert m_in.any() and not m_out.any()  # the drag starts inside the brush
    image384 = torch.nn.functional.interpolate(kw["image"], size=(384, 384), mode="nearest")
    with torch.no_grad():
        dense = pipe.cmp.decode(pipe.cmp.encode_image(image384), f_in[:19], m_in[:19])  # [19,2,384,384]
    dense = scale_in_brush_flow(dense, brush_to_grid(controls.brush, SIZE, SIZE))
    expected = combine_brush_flows(flow_from_grid(dense, SIZE, SIZE), torch.zeros(19, 2, SIZE, SIZE))
    torch.testing.assert_close(flow[0], expected[..., ::8, ::8], rtol=1e-4, atol=1e-4)
    outside = torch.from_numpy(~controls.brush[::8, ::8])
    assert not flow[0][:, :, outside].any() and flow[0][:, :, ~outside].abs().sum() > 0
    assert spy.trajectory_flows and spy.trajectory_flows[0].abs().sum() > 0  # the adapter saw the drag


def test_user_landmark_mask_is_framed_like_the_photo(tmp_path, monkeypatch, tree, photo, speech):
    spy = Spy(monkeypatch)
    mask = np.zeros((PHOTO, PHOTO), np.uint8)
    mask[:, : PHOTO // 2] = 255  # the left half of the photo
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    code, out = render(tmp_path, tree, photo, speech[0.4], "--steps", "1", "--landmark-mask", path,
                       "--guidance-max", "1")
    assert code == 0 and probe_video(out).frames == 10
    got = spy.calls[0]["kwargs"]["landmark_mask"][0, 0]
    expected = framing().apply_image(mask).astype(np.float32) / 255  # resized and cropped like the photo
    torch.testing.assert_close(got, torch.from_numpy(expected))
    assert (got[:, : SIZE // 2 - 4] > 0.99).all() and (got[:, SIZE // 2 + 4:] < 0.01).all()


PROGRESS_BAR = re.compile(r"^\s*\w+:\s+\d+%\|")  # a tqdm line of TqdmProgress


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def _misshape(path):
    state = load_file(path)
    key = next(k for k in state if k.endswith("conv_in.weight"))
    state[key] = torch.zeros(3, 3, 3, 3, dtype=state[key].dtype)
    save_file(state, path)


def _garbage(path):
    path.write_bytes(b"not a torch checkpoint")


def _drop_key(path):  # diffusers would initialise the missing weight randomly and only warn
    state = load_file(path)
    del state["controlnet_mid_block.bias"]
    save_file(state, path)


@pytest.mark.parametrize("relpath, damage", [
    (f"{SVD}/unet/diffusion_pytorch_model.fp16.safetensors", _truncate),
    ("ckpts/mofa/traj_controlnet/diffusion_pytorch_model.safetensors", _misshape),
    ("ckpts/mofa/ldmk_controlnet/diffusion_pytorch_model.safetensors", _drop_key),
    (CMP_CKPT, _garbage),
], ids=["truncated-unet", "misshapen-adapter", "adapter-missing-a-key", "garbage-cmp"])
def test_a_damaged_checkpoint_fails_with_one_line_naming_it(tmp_path, capsys, tree, photo, speech, relpath, damage):
    root = tmp_path / "tree"
    shutil.copytree(tree, root)
    damage(root / relpath)
    code, out = render(tmp_path, root, photo, speech[0.4], "--steps", "1")
    err = capsys.readouterr().err
    # checkpoints load before the driver runs; at most a slow stage's progress bar precedes the error line
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS_BAR.match(line)]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(root / relpath) in lines[0] and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


def test_plain_files_load_beside_fp16_variants(tmp_path, tree):
    """The published SVD folder has fp16 variant files; a component with plain files instead loads those."""
    root = tmp_path / "tree"
    shutil.copytree(tree, root)
    vae = root / SVD / "vae"
    (vae / "diffusion_pytorch_model.fp16.safetensors").rename(vae / "diffusion_pytorch_model.safetensors")
    pipe = load_pipeline(root, torch.float32)
    assert pipe.vae.dtype == pipe.unet.dtype == pipe.landmark_adapter.dtype == torch.float32
    reference = load_file(vae / "diffusion_pytorch_model.safetensors")["decoder.conv_out.weight"]
    assert torch.equal(pipe.vae.decoder.conv_out.weight, reference.float())
    assert tuple(pipe.cmp.config.layers) == TINY_CMP["layers"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks mofa when a GPU is present")
def test_auto_with_checkpoints_but_no_gpu_picks_warp_and_says_so(tmp_path, capsys, caplog, tree, photo, speech):
    out = tmp_path / "auto.mp4"
    with caplog.at_level(logging.WARNING):
        code = cli.main(["render", "--image", str(photo), "--audio", str(speech[0.4]), "-o", str(out),
                         "--engine", "auto", "--ckpt-dir", str(tree), "--size", str(SIZE)])
    assert code == 0
    captured = capsys.readouterr()
    assert "engine warp (auto: MOFA checkpoints found but no GPU)" in captured.err + caplog.text
    assert "engine warp" in captured.out and probe_video(out).frames == 10


# ------------------------------------------------------------------------------ the library function
def test_mofa_frames_streams_and_reports_progress(tree, photo):
    """Direct call: progress stages, one frame per landmark frame, a 1-frame clip is the portrait."""
    image = framed_photo(photo)
    reference = np.array(json.loads(REFERENCE_68)).astype(np.float32) * SIZE
    points = np.repeat(reference[None], 6, axis=0)
    points[1:, 48:68, 1] += np.linspace(0.5, 3, 5, dtype=np.float32)[:, None]  # the mouth opens
    track = LandmarkTrack(points, reference, 25.0)
    portrait = _Portrait(image=image, framing=framing())
    options = RenderOptions(engine="mofa", size=SIZE, ckpt_dir=tree,
                            mofa=MofaOptions(steps=2, window=14, device="cpu", decode_chunk=4)).validate()
    seen: dict[str, list[tuple[int, int]]] = {}
    frames = mofa_frames(options, portrait, track, MotionControls(),
                         progress=lambda stage, done, total: seen.setdefault(stage, []).append((done, total)))
    assert set(seen) == {"load", "flow"}  # loading and CMP happen at the call, denoising on demand
    out = list(frames)
    assert len(out) == 6 and all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in out)
    assert seen["load"][-1] == (4, 4) and seen["flow"][-1] == (5, 5) and seen["denoise"] == [(1, 2), (2, 2)]
    single = list(mofa_frames(options, portrait, LandmarkTrack(points[:1], reference, 25.0), MotionControls()))
    assert len(single) == 1 and np.array_equal(single[0], image)


class _Portrait:
    def __init__(self, image, framing):
        self.image, self.framing, self.face = image, framing, None


REFERENCE_68 = json.dumps(FRONTAL_FACE_68)  # a plausible frontal face, in units of the image side


def test_device_and_dtype(caplog):
    with caplog.at_level(logging.INFO, logger="portrait_studio.engines.mofa"):
        assert resolve_device(MofaOptions(device="cpu", dtype="fp16")) == (torch.device("cpu"), torch.float32)
    assert "fp32 on the CPU" in caplog.text
    with pytest.raises(InputError, match="not a torch device"):
        resolve_device(MofaOptions(device="toaster"))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device(MofaOptions(device="cuda"))
        assert resolve_device(MofaOptions())[0] == torch.device("cpu")


# ------------------------------------------------------------------------------ drags and CMP sizes
def test_cmp_size_is_read_off_the_checkpoint(tree):
    published = {k[len("module."):]: torch.empty(v, device="meta") for k, v in load_manifest("cmp").items()}
    with torch.device("meta"):
        defaults = dict(CMP().config)
    assert infer_config(published) == {k: tuple(v) if isinstance(v, (list, tuple)) else v
                                       for k, v in defaults.items() if k != "fmax" and not k.startswith("_")}
    cmp = CMP.from_checkpoint(tree / CMP_CKPT)  # no config: the tiny sizes come from the shapes
    assert {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in cmp.config.items() if k in TINY_CMP} \
        == TINY_CMP
    assert not cmp.training and cmp.config.fmax == 50.0
    with pytest.raises(CMPCheckpointError, match="image_encoder.conv5.weight"):
        infer_config({k: v for k, v in published.items() if k != "image_encoder.conv5.weight"})


def test_cancel_stops_within_one_denoising_step_and_leaves_nothing(tmp_path, tree, photo, speech):
    """Issue #7: the cancel event is checked after every denoising step (tiny tree, CPU)."""
    import threading

    from portrait_studio import RenderCancelled, Studio

    cancel, steps = threading.Event(), []

    def progress(stage, done, total):
        if stage == "denoise":
            steps.append(done)
            if done == 2:
                cancel.set()

    options = RenderOptions(engine="mofa", size=SIZE, ckpt_dir=tree,
                            mofa=MofaOptions(steps=6, window=14, device="cpu"))
    out = tmp_path / "cancelled.mp4"
    with Studio(options) as studio:
        with pytest.raises(RenderCancelled):
            studio.render(photo, speech[0.4], out, progress=progress, cancel=cancel)
        assert steps == [1, 2]  # stopped right after the step that saw the event
        assert list(tmp_path.iterdir()) == []
        # the loaded pipeline stays for the next render of the same Studio
        studio.render(photo, speech[0.4], out, options=RenderOptions(
            engine="mofa", size=SIZE, ckpt_dir=tree, mofa=MofaOptions(steps=1, window=14, device="cpu")))
        assert out.is_file() and studio.models.loads == {"face": 1, "mofa": 1}


# ------------------------------------------------------------------------------ camera moves
def test_camera_inputs_move_the_landmarks_and_add_grid_drags():
    """MOFA reads a camera move as moved landmarks (keypoint flow) plus drags on a grid (trajectory flow)."""
    from mofa_engine.camera import CameraMove
    from portrait_studio.engines.mofa import camera_inputs

    rng = np.random.default_rng(0)
    ref = rng.uniform(20, 44, (68, 2)).astype(np.float32)
    track = LandmarkTrack(np.repeat(ref[None], 10, 0), ref, 25.0)
    user = [np.array([[5.0, 5.0], [9.0, 6.0]])]
    move = CameraMove("pan-left", 0.1)
    moved, controls = camera_inputs(track, MotionControls(trajectories=user, camera=move), SIZE, SIZE)
    assert np.allclose(moved.points[0], ref) and np.allclose(moved.points[-1], ref + [0.1 * SIZE, 0], atol=1e-4)
    assert np.allclose(moved.reference, ref)
    drags = controls.trajectories[1:]
    assert controls.trajectories[0] is user[0] and len(drags) >= 48  # 8 x 8 grid, minus what leaves the frame
    assert all(d.shape == (25, 2) and np.allclose(d[9:] - d[0], [0.1 * SIZE, 0]) for d in drags)
    # as Eq. 4 hints on the CMP grid: every grid drag pushes right by 0.1 of the grid at the clip's end
    from mofa_engine.drag_hints import drag_groups

    inside, outside, _ = drag_groups(drags, None, SIZE, SIZE, 10)
    assert inside is None
    count = outside.mask(torch.tensor([9]))[0]  # drags starting at each grid pixel
    starts = count[0] > 0
    last = outside.flow(torch.tensor([9]))[0][:, starts] / count[:, starts]  # [2, K] mean hint per start
    assert (last[0] - 38.4).abs().max() <= 1 and last[1].abs().max() <= 1  # int() truncation
    assert camera_inputs(track, MotionControls(trajectories=user), SIZE, SIZE) == (track, MotionControls(user))


def test_camera_move_on_the_mofa_engine(tmp_path, monkeypatch, tree, photo, speech):
    spy = Spy(monkeypatch)
    code, out = render(tmp_path, tree, photo, speech[0.4], "--steps", "1", "--camera", "zoom-in:0.2")
    assert code == 0 and probe_video(out).frames == 10
    (call,) = spy.calls
    kw = call["kwargs"]
    assert kw["trajectory_flow"] is not None and kw["trajectory_flow"].shape == (1, 9, 2, 8, 8)
    poses = kw["pose_images"](torch.tensor([0, 9]))  # the face's pose image grows with the zoom
    assert (poses[1] > 0.1).sum() > (poses[0] > 0.1).sum()
