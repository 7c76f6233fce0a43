"""Checkpoint discovery and verification (never loads tensors to check them).

The checkpoint directory is `--ckpt-dir`, else `$PORTRAIT_STUDIO_CKPTS`, else the `ckpts/` folder of
this repository. It may be a clone of the Hugging Face repo `MyNiuuu/MOFA-Video-Hybrid` unchanged (its
root holds `ckpts/mofa/...` and `models/cmp/...`), or a folder holding that clone's `ckpts/` content
(`mofa/...`, `sad_talker/...`) with `models/cmp/...` beside it. See ckpts/README.md.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = Path(__file__).resolve().parent / "manifests"
HF_REPO = "MyNiuuu/MOFA-Video-Hybrid"
SVD = "ckpts/mofa/stable-video-diffusion-img2vid-xt-1-1"
CMP_CKPT = "models/cmp/experiments/semiauto_annot/resnet50_vip+mpii_liteflow/checkpoints/ckpt_iter_42000.pth.tar"


@dataclass(frozen=True)
class CkptFile:
    """One file an engine needs: where it lives in the published layout and how to check it."""

    key: str  # short name used in messages
    paths: tuple[str, ...]  # accepted relative paths in the published layout, preferred first
    manifest: str | None = None  # manifest name whose keys/shapes the file must hold (extra keys allowed)


MOFA_FILES: tuple[CkptFile, ...] = (
    CkptFile("svd/model_index", (f"{SVD}/model_index.json",)),
    CkptFile("svd/scheduler", (f"{SVD}/scheduler/scheduler_config.json",)),
    CkptFile("svd/feature_extractor", (f"{SVD}/feature_extractor/preprocessor_config.json",)),
    CkptFile("svd/unet/config", (f"{SVD}/unet/config.json",)),
    CkptFile("svd/unet", (f"{SVD}/unet/diffusion_pytorch_model.fp16.safetensors",
                          f"{SVD}/unet/diffusion_pytorch_model.safetensors"), manifest="svd_unet"),
    CkptFile("svd/vae/config", (f"{SVD}/vae/config.json",)),
    CkptFile("svd/vae", (f"{SVD}/vae/diffusion_pytorch_model.fp16.safetensors",
                         f"{SVD}/vae/diffusion_pytorch_model.safetensors")),
    CkptFile("svd/image_encoder/config", (f"{SVD}/image_encoder/config.json",)),
    CkptFile("svd/image_encoder", (f"{SVD}/image_encoder/model.fp16.safetensors",
                                   f"{SVD}/image_encoder/model.safetensors")),
    CkptFile("traj_controlnet/config", ("ckpts/mofa/traj_controlnet/config.json",)),
    CkptFile("traj_controlnet", ("ckpts/mofa/traj_controlnet/diffusion_pytorch_model.safetensors",),
             manifest="traj_controlnet"),
    CkptFile("ldmk_controlnet/config", ("ckpts/mofa/ldmk_controlnet/config.json",)),
    CkptFile("ldmk_controlnet", ("ckpts/mofa/ldmk_controlnet/diffusion_pytorch_model.safetensors",),
             manifest="ldmk_controlnet"),
    CkptFile("cmp", (CMP_CKPT,), manifest="cmp"),
)

SADTALKER_FILES: tuple[CkptFile, ...] = (
    CkptFile("sad_talker", ("ckpts/sad_talker/SadTalker_V0.0.2_256.safetensors",), manifest="sadtalker"),
    CkptFile("sad_talker/bfm", ("ckpts/sad_talker/BFM_Fitting/BFM_model_front.mat",)),
)

Status = Literal["present", "missing", "wrong-shape", "unreadable"]


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one checkpoint file."""

    spec: CkptFile
    status: Status
    path: Path  # where it was found, or where it was expected
    detail: str = ""  # what is wrong (first offending keys), or what was checked


@dataclass(frozen=True)
class CheckReport:
    """Verdicts for a set of files under one checkpoint directory."""

    root: Path
    files: tuple[FileCheck, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(f.status == "present" for f in self.files)

    @property
    def problems(self) -> tuple[FileCheck, ...]:
        return tuple(f for f in self.files if f.status != "present")


def default_ckpt_dir() -> Path:
    """`$PORTRAIT_STUDIO_CKPTS` if set, else this repository's `ckpts/` (never the working directory)."""
    env = os.environ.get("PORTRAIT_STUDIO_CKPTS")
    return Path(env).expanduser() if env else REPO_ROOT / "ckpts"


def locate(root: Path, spec: CkptFile) -> Path | None:
    """The first existing path for `spec` under `root`, in either accepted layout, else None."""
    for rel in spec.paths:
        for candidate in _layouts(root, rel):
            if candidate.is_file():
                return candidate
    return None


def _layouts(root: Path, rel: str) -> tuple[Path, ...]:
    # A clone root holds ckpts/mofa/...; the repo's own ckpts/ folder may hold mofa/... directly.
    if rel.startswith("ckpts/"):
        return root / rel, root / rel[len("ckpts/"):]
    return (root / rel,)


def expected_path(root: Path, spec: CkptFile) -> Path:
    return root / spec.paths[0]


@lru_cache(maxsize=None)
def load_manifest(name: str) -> dict[str, tuple[int, ...]]:
    """`{state-dict key: shape}` of a published network (bundled copies of the reference manifests)."""
    data = json.loads((MANIFESTS / f"manifest_{name}.json").read_text())
    return {k: tuple(v) for k, v in data.items()}


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a .safetensors header (8-byte little-endian length + JSON); no tensor is read."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("file shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length <= 0 or length > 100_000_000:
            raise ValueError(f"implausible safetensors header length {length}")
        header = json.loads(f.read(length))
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def torch_ckpt_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of a torch checkpoint's state dict, loaded with weights_only=True (mmap when possible)."""
    import torch

    try:
        obj = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError("no state_dict in the checkpoint")
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def check_file(root: Path, spec: CkptFile, deep: bool = True) -> FileCheck:
    """Presence, and with `deep` the manifest's keys and shapes (extra keys are tolerated)."""
    path = locate(root, spec)
    if path is None:
        return FileCheck(spec, "missing", expected_path(root, spec))
    if not deep or spec.manifest is None:
        if path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                return FileCheck(spec, "unreadable", path, f"not valid JSON ({exc})")
        return FileCheck(spec, "present", path)
    try:
        shapes = safetensors_shapes(path) if path.suffix == ".safetensors" else torch_ckpt_shapes(path)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means an unreadable file
        return FileCheck(spec, "unreadable", path, f"{type(exc).__name__}: {exc}")
    return _compare(spec, path, shapes)


def _compare(spec: CkptFile, path: Path, shapes: dict[str, tuple[int, ...]]) -> FileCheck:
    manifest = load_manifest(spec.manifest)
    missing = [k for k in manifest if k not in shapes]
    wrong = [k for k in manifest if k in shapes and shapes[k] != manifest[k]]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} keys with wrong shapes (e.g. {k}: {list(shapes[k])} != {list(manifest[k])})")
        return FileCheck(spec, "wrong-shape", path, "; ".join(parts))
    extra = len(shapes) - len(manifest)
    return FileCheck(spec, "present", path, f"{len(manifest)} keys match" + (f", {extra} extra" if extra else ""))


def check_ckpts(root: Path | None = None, files: tuple[CkptFile, ...] = MOFA_FILES, deep: bool = True) -> CheckReport:
    """Check a set of checkpoint files under `root` (default: `default_ckpt_dir()`)."""
    root = Path(root) if root is not None else default_ckpt_dir()
    return CheckReport(root, tuple(check_file(root, spec, deep) for spec in files))
