"""Strict checkpoint loading for the MOFA pipeline's pretrained components.

Owns `load_pretrained` (safetensors only, a missing key is an error, fp16-style variants picked per
folder), `load_svd_components` (the SVD-xt folder: VAE, UNet, CLIP image encoder, Euler scheduler)
and `ComponentLoadError`, the one exception a failed load raises, naming the file or folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler
from safetensors import SafetensorError
from transformers import CLIPVisionModelWithProjection

from mofa_engine.models.unet import MofaUNet


class ComponentLoadError(ValueError):
    """A pretrained component could not be loaded; `path` is its weights file (or folder), `reason` one line."""

    def __init__(self, path: Path, reason: BaseException | str) -> None:
        self.path = Path(path)
        self.reason = _describe(reason) if isinstance(reason, BaseException) else str(reason)
        super().__init__(f"{self.path}: {self.reason}")


def _describe(exc: BaseException) -> str:
    """One line on why a loader failed: the safetensors decoding error when there was one (diffusers wraps
    it in a message that only repeats the path), else the first line without diffusers' advice."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    decoding = next((e for e in chain if isinstance(e, SafetensorError)), None)
    if decoding is not None:
        return f"not a readable safetensors file ({str(decoding).strip().splitlines()[0]})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^Cannot load .*? because ", "", text)  # diffusers: "Cannot load <empty> because <key> ..."
    return text.split(" If you want to instead overwrite")[0]


def _variant_files(folder: Path, variant: str) -> bool:
    return folder.is_dir() and any(f".{variant}." in p.name and p.suffix in (".safetensors", ".json")
                                   for p in folder.iterdir() if p.name != "config.json")


def load_pretrained(model_cls, folder: str | Path, variant: str | None = None, **kwargs):
    """`model_cls.from_pretrained(folder)` (diffusers or transformers) from safetensors, strictly.

    `variant` (e.g. "fp16") is used when the folder holds that variant's files, else the plain files.
    diffusers and transformers initialise weights missing from a file randomly and only warn; here a
    missing key is an error (unexpected extra keys are tolerated, as the reference does).

    Raises:
        ComponentLoadError: unreadable config or weights, wrong shapes, or missing keys; names the
            weights file when one is found, else the folder.
    """
    folder = Path(folder)
    variant = variant if variant is not None and _variant_files(folder, variant) else None
    weights = sorted(folder.glob(f"*.{variant}.safetensors" if variant else "*.safetensors"))
    weights = [w for w in weights if variant or w.name.count(".") == 1]
    where = weights[0] if len(weights) == 1 else folder
    try:
        model, info = model_cls.from_pretrained(folder, variant=variant, use_safetensors=True,
                                                output_loading_info=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, SafetensorError) as exc:
        raise ComponentLoadError(where, exc) from exc
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ComponentLoadError(where, f"{len(missing)} of {model_cls.__name__}'s weights are missing "
                                        f"(e.g. {', '.join(missing[:3])})")
    mismatched = sorted(str(k) for k in info.get("mismatched_keys") or ())
    if mismatched:
        raise ComponentLoadError(where, f"{len(mismatched)} weights have the wrong shape (e.g. {mismatched[0]})")
    return model.eval()


def load_svd_components(svd_path: str | Path, torch_dtype: torch.dtype | None = None,
                        variant: str | None = None) -> dict:
    """The SVD-xt folder's `vae`, `unet`, `image_encoder` (through `load_pretrained`, on CPU, in eval mode)
    and `scheduler`, as `MofaPipeline` keyword arguments.

    Raises:
        ComponentLoadError: a component cannot be loaded (names its folder or weights file).
    """
    svd_path = Path(svd_path)
    dtype = {} if torch_dtype is None else {"torch_dtype": torch_dtype}
    vae = load_pretrained(AutoencoderKLTemporalDecoder, svd_path / "vae", variant, **dtype)
    unet = load_pretrained(MofaUNet, svd_path / "unet", variant, **dtype)
    image_encoder = load_pretrained(CLIPVisionModelWithProjection, svd_path / "image_encoder", variant,
                                    **({"dtype": torch_dtype} if torch_dtype else {}))
    try:
        scheduler = EulerDiscreteScheduler.from_pretrained(svd_path, subfolder="scheduler")
    except (OSError, ValueError, TypeError) as exc:
        raise ComponentLoadError(svd_path / "scheduler", exc) from exc
    return {"vae": vae.eval(), "image_encoder": image_encoder.eval(), "unet": unet.eval(), "scheduler": scheduler}
