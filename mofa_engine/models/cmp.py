"""CMP: sparse-to-dense motion propagation (Zhan et al., CVPR 2019), as MOFA-Video uses it.

MOFA-Video densifies every sparse hint (landmark displacements, trajectory starts) with the published
CMP checkpoint `resnet50_vip+mpii_liteflow/checkpoints/ckpt_iter_42000.pth.tar`:

    image [0,1] --*2-1--> dilated ResNet-50 (+conv5) ------------------\
    cat[sparse flow, mask] (4ch) --> ShallowNet 8x ---------------------+--> MotionDecoderSkipLayer
    --> logits [B, 2*nbins, S/2, S/2] --Fuser (softmax-weighted bin centres)--> bilinear AC --> flow [B,2,S,S]

and `CMP.densify` wraps the round trip of spec §2.4 (nearest 384 first frame, nearest upsample of the
flow to H x W with per-axis rescaling). Key names equal the published state dict after stripping its
`module.` prefix; see reference/mofa_inference_spec.md §3 and manifests/manifest_cmp.json.
"""

from __future__ import annotations

import logging
import pickle
from os import PathLike
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .cmp_backbone import DilatedResNet

logger = logging.getLogger(__name__)

CMP_GRID = 384  # CMP works on a 384x384 grid in MOFA (training crop size)
WRAPPER_PREFIX = "module."  # DataParallel prefix stored in the published state dict


class CMPCheckpointError(ValueError):
    """A CMP checkpoint could not be read safely, or its keys/shapes do not fit the network."""


class CMPImageFeatures(NamedTuple):
    """The image-only part of CMP, shareable by every hint map on the same first frame."""

    enc: torch.Tensor  # [B, img_enc_dim, S/8, S/8] image encoding (after conv5)
    skip2: torch.Tensor  # [B, decoder_width/4, S/2, S/2] skipconv2(c1)
    skip4: torch.Tensor  # [B, decoder_width, S/4, S/4] skipconv4(l1)


def bin_centres(nbins: int = 99, fmax: float = 50.0, **like) -> torch.Tensor:
    """Centres of CMP's flow bins: `c_j = j*step - fmax + step/2`, `step = 2*fmax/nbins`.

    Returns [nbins] float (dtype/device from `like`, e.g. `dtype=torch.float32`); -49.49..49.49
    for the published nbins=99, fmax=50.
    """
    step = 2.0 * fmax / nbins
    return torch.arange(nbins, **like) * step - fmax + step / 2.0


def logits_to_flow(logits: torch.Tensor, nbins: int = 99, fmax: float = 50.0) -> torch.Tensor:
    """CMP's Fuser: per axis, the softmax-weighted mean of the bin centres.

    Args:
        logits: [B, 2*nbins, h, w] float; channels 0..nbins-1 are x (dx) bins, the rest y (dy) bins.
    Returns:
        [B, 2, h, w] flow in pixels of the grid CMP ran on, same dtype as `logits` (computed in fp32).
    """
    if logits.ndim != 4 or logits.shape[1] != 2 * nbins:
        raise ValueError(f"logits must be [B, {2 * nbins}, h, w], got {tuple(logits.shape)}")
    probs = logits.float().unflatten(1, (2, nbins)).softmax(dim=2)  # [B,2*nbins,h,w] -> [B,2,nbins,h,w]
    centres = bin_centres(nbins, fmax, dtype=probs.dtype, device=probs.device).view(1, 1, nbins, 1, 1)
    return (probs * centres).sum(dim=2).to(logits.dtype)  # [B,2,nbins,h,w] -> [B,2,h,w]


def upsample_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-resize a flow to `size` = (H, W) and rescale it to the new grid's pixels (spec §2.4).

    Args:
        flow: [N, 2, h, w] float, channel 0 = dx, 1 = dy, in pixels of the h x w grid.
    Returns:
        [N, 2, H, W]: `F.interpolate(flow, (H, W), mode='nearest')` with dx *= W/w and dy *= H/h.
    """
    h, w = flow.shape[-2:]
    out = F.interpolate(flow, size=tuple(size), mode="nearest")
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=out.dtype, device=out.device)
    return out * scale.view(1, 2, 1, 1)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ShallowNet8x(nn.Module):
    """Sparse-motion encoder: 4 channels (dx, dy, mask, mask) -> `out_dim` channels at 1/8 resolution."""

    def __init__(self, in_dim: int = 4, out_dim: int = 16) -> None:
        super().__init__()
        # indices 0/1 and 4/5 are the checkpoint's `features.N` keys
        self.features = nn.Sequential(
            nn.Conv2d(in_dim, out_dim, kernel_size=5, stride=2, padding=2),
            nn.BatchNorm2d(out_dim),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_dim),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        return self.features(sparse)


class MotionDecoderSkipLayer(nn.Module):
    """Multi-scale context decoder with skip connections from the image encoder (spec §3).

    Widths scale with `width` (128 published): decoderK width, fusion8 2*width, skipconv4 width,
    fusion4 width, skipconv2 width/4, fusion2 width/2, head `out_dim` = 2*nbins.
    """

    def __init__(self, in_dim: int = 272, c1_dim: int = 64, l1_dim: int = 256, width: int = 128,
                 out_dim: int = 198) -> None:
        super().__init__()
        self.decoder1 = nn.Sequential(*_conv_bn_relu(in_dim, width), *_conv_bn_relu(width, width),
                                      *_conv_bn_relu(width, width))
        for k in (2, 4, 8):
            setattr(self, f"decoder{k}", nn.Sequential(
                nn.MaxPool2d(kernel_size=k, stride=k),
                *_conv_bn_relu(in_dim, width), *_conv_bn_relu(width, width), *_conv_bn_relu(width, width),
            ))
        self.fusion8 = nn.Sequential(*_conv_bn_relu(4 * width, 2 * width))
        self.skipconv4 = nn.Sequential(*_conv_bn_relu(l1_dim, width))
        self.fusion4 = nn.Sequential(*_conv_bn_relu(2 * width + width, width))
        self.skipconv2 = nn.Sequential(*_conv_bn_relu(c1_dim, width // 4))
        self.fusion2 = nn.Sequential(*_conv_bn_relu(width + width // 4, width // 2))
        self.head = nn.Conv2d(width // 2, out_dim, kernel_size=1)

    def skip_features(self, c1: torch.Tensor, l1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image-only part of the decoder: (skipconv2(c1) [B,w/4,S/2,S/2], skipconv4(l1) [B,w,S/4,S/4])."""
        return self.skipconv2(c1), self.skipconv4(l1)

    def forward(self, x: torch.Tensor, skip2: torch.Tensor, skip4: torch.Tensor) -> torch.Tensor:
        """x: [B, img_enc+sparse_enc, S/8, S/8] -> logits [B, out_dim, S/2, S/2]."""
        x1 = self.decoder1(x)
        size8 = x1.shape[-2:]
        xs = [x1] + [_resize(getattr(self, f"decoder{k}")(x), size8) for k in (2, 4, 8)]
        f8 = self.fusion8(torch.cat(xs, dim=1))  # cat order [x1, x2, x4, x8]
        f4 = self.fusion4(torch.cat([_resize(f8, skip4.shape[-2:]), skip4], dim=1))
        f2 = self.fusion2(torch.cat([_resize(f4, skip2.shape[-2:]), skip2], dim=1))
        return self.head(f2)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class CMP(ModelMixin, ConfigMixin):
    """Conditional Motion Propagation network (image encoder + sparse encoder + skip decoder + Fuser).

    The defaults are the published `resnet50_vip+mpii_liteflow` network (28,516,422 parameters).

    Args:
        layers: Bottleneck blocks per ResNet stage ((3, 4, 6, 3) = ResNet-50).
        base_width: ResNet stem width (64); stage widths follow as in ResNet.
        img_enc_dim: channels of the image encoding after `conv5` (256).
        sparse_enc_dim: channels of the sparse-motion encoding (16).
        decoder_width: width of the decoder branches (128); the other decoder widths scale with it.
        nbins: flow bins per axis of the discrete head (99); the head has 2*nbins outputs.
        fmax: flow magnitude covered by the bins, in grid pixels (50).
    """

    @register_to_config
    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), base_width: int = 64, img_enc_dim: int = 256,
                 sparse_enc_dim: int = 16, decoder_width: int = 128, nbins: int = 99, fmax: float = 50.0) -> None:
        super().__init__()
        if decoder_width % 4 != 0:
            raise ValueError(f"decoder_width must be a multiple of 4, got {decoder_width}")
        self.image_encoder = DilatedResNet(layers, base_width, img_enc_dim)
        self.flow_encoder = ShallowNet8x(4, sparse_enc_dim)
        self.flow_decoder = MotionDecoderSkipLayer(
            in_dim=img_enc_dim + sparse_enc_dim, c1_dim=base_width, l1_dim=4 * base_width,
            width=decoder_width, out_dim=2 * nbins,
        )

    # -- the network, in three steps ------------------------------------------------------------------

    def encode_image(self, image: torch.Tensor) -> CMPImageFeatures:
        """Everything that depends on the image only (computed once per first frame by `densify`).

        Args:
            image: [B,3,S,S] float in [0, 1] (S = 384 for the published model); normalised here with
                `image*2-1` as MOFA does (not the ImageNet mean/std of the CMP config).
        Returns:
            CMPImageFeatures (enc, skip2, skip4), batch B.
        """
        feats = self.image_encoder(image * 2 - 1)
        skip2, skip4 = self.flow_decoder.skip_features(feats.c1, feats.l1)
        return CMPImageFeatures(enc=feats.enc, skip2=skip2, skip4=skip4)

    def decode(self, feats: CMPImageFeatures, sparse_flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sparse hints + image features -> dense flow on the S x S grid.

        Args:
            feats: from `encode_image`, batch B or 1 (broadcast over the hints).
            sparse_flow: [B,2,S,S] float, (dx, dy) in grid pixels at hint pixels, 0 elsewhere.
            mask: [B,2,S,S] float, 1 at hint pixels (both channels), 0 elsewhere.
        Returns:
            [B,2,S,S] float flow in grid pixels, |flow| < fmax.
        """
        sparse_enc = self.flow_encoder(torch.cat([sparse_flow, mask], dim=1))  # [B,4,S,S] -> [B,16,S/8,S/8]
        n = sparse_enc.shape[0]
        enc, skip2, skip4 = (f.expand(n, -1, -1, -1) for f in feats)  # [1,C,h,w] -> [B,C,h,w] (view)
        logits = self.flow_decoder(torch.cat([enc, sparse_enc], dim=1), skip2, skip4)  # [B,2*nbins,S/2,S/2]
        flow = logits_to_flow(logits, self.config.nbins, self.config.fmax)  # [B,2,S/2,S/2]
        return _resize(flow, sparse_flow.shape[-2:])  # bilinear, align_corners=True: S/2 -> S

    def forward(self, image: torch.Tensor, sparse_flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image [B,3,S,S] in [0,1], sparse_flow/mask [B,2,S,S] -> flow [B,2,S,S] (see `decode`)."""
        return self.decode(self.encode_image(image), sparse_flow, mask)

    # -- the MOFA round trip ---------------------------------------------------------------------------

    @torch.no_grad()
    def image_features(self, first_frame: torch.Tensor,
                       grid: tuple[int, int] = (CMP_GRID, CMP_GRID)) -> CMPImageFeatures:
        """The first frame's CMP features on the grid, to share across `densify` calls (one clip, one encode).

        Args:
            first_frame: [1,3,H,W] float in [0, 1]; nearest-resized to `grid` (spec §2.4).
            grid: (S, S) of the hint maps it will be used with.
        Returns:
            CMPImageFeatures with batch 1.
        """
        if first_frame.ndim != 4 or first_frame.shape[:2] != (1, 3):
            raise ValueError(f"first_frame must be [1,3,H,W], got {tuple(first_frame.shape)}")
        like = dict(dtype=self.dtype, device=self.device)
        image = F.interpolate(first_frame.to(**like), size=tuple(grid), mode="nearest")  # [1,3,H,W] -> [1,3,S,S]
        return self.encode_image(image)

    @torch.no_grad()
    def densify(self, first_frame: torch.Tensor, sparse_flow: torch.Tensor, mask: torch.Tensor,
                out_size: tuple[int, int] | None = None, batch_size: int = 8,
                features: CMPImageFeatures | None = None) -> torch.Tensor:
        """Densify N sparse hint maps on the CMP grid into flows at the output size (spec §2.4).

        The first frame is resized to the grid with nearest interpolation; with one first frame its
        features are computed once and shared by all N hint maps (equal to per-frame runs in eval mode).
        Pass `features` (from `image_features` of the same first frame and grid) to skip even that, e.g.
        when a long clip is densified chunk by chunk.

        Args:
            first_frame: [1,3,H,W] (or [N,3,H,W], one per hint map) float in [0, 1].
            sparse_flow: [N,2,S,S] float sparse (dx, dy) on the CMP grid (S = 384 in MOFA).
            mask: [N,2,S,S] float, 1 at hint pixels.
            out_size: (H_out, W_out) of the returned flows; default the first frame's (H, W).
            batch_size: hint maps per network call (bounds memory).
            features: precomputed features of `first_frame` (batch 1) on this grid, or None.
        Returns:
            [N,2,H_out,W_out] flow (dx, dy) in output pixels, dtype/device of the model.
        """
        self._check_densify_inputs(first_frame, sparse_flow, mask, batch_size)
        out_size = tuple(out_size) if out_size is not None else tuple(first_frame.shape[-2:])
        grid = tuple(sparse_flow.shape[-2:])
        like = dict(dtype=self.dtype, device=self.device)
        if features is not None:
            if first_frame.shape[0] != 1 or features.enc.shape[0] != 1:
                raise ValueError("shared `features` need a single first frame ([1,3,H,W]) encoded with batch 1")
            shared, image = features, None
        else:
            image = F.interpolate(first_frame.to(**like), size=grid, mode="nearest")  # [B,3,H,W] -> [B,3,S,S]
            shared = self.encode_image(image) if image.shape[0] == 1 else None
        flows = []
        for start in range(0, sparse_flow.shape[0], batch_size):
            part = slice(start, start + batch_size)
            feats = shared if shared is not None else self.encode_image(image[part])
            flow = self.decode(feats, sparse_flow[part].to(**like), mask[part].to(**like))  # [n,2,S,S]
            flows.append(upsample_flow(flow, out_size))  # [n,2,S,S] -> [n,2,H_out,W_out]
        return torch.cat(flows)

    def _check_densify_inputs(self, first_frame: torch.Tensor, sparse_flow: torch.Tensor, mask: torch.Tensor,
                              batch_size: int) -> None:
        if self.training:
            raise RuntimeError("CMP.densify() needs BatchNorm running statistics: call .eval() first")
        if sparse_flow.ndim != 4 or sparse_flow.shape[1] != 2:
            raise ValueError(f"sparse_flow must be [N,2,S,S], got {tuple(sparse_flow.shape)}")
        if mask.shape != sparse_flow.shape:
            raise ValueError(f"mask must have sparse_flow's shape {tuple(sparse_flow.shape)}, got {tuple(mask.shape)}")
        n = sparse_flow.shape[0]
        if first_frame.ndim != 4 or first_frame.shape[1] != 3 or first_frame.shape[0] not in (1, n):
            raise ValueError(f"first_frame must be [1,3,H,W] or [{n},3,H,W], got {tuple(first_frame.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    # -- the published checkpoint ----------------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path: str | PathLike, map_location: str | torch.device = "cpu", **config) -> "CMP":
        """Load a CMP training checkpoint (e.g. `ckpt_iter_42000.pth.tar`) into a network in eval mode.

        The file is read with `torch.load(weights_only=True)`; a dict with a `state_dict` entry (or a bare
        state dict) is accepted, a leading `module.` is stripped from every key, and keys and shapes must
        equal the network's exactly, except that missing `num_batches_tracked` buffers are tolerated
        (they are created as 0). Without `config` the architecture is read off the state-dict shapes
        (`infer_config`: the published file gives the published sizes; a shrunk test checkpoint its own);
        `config` fixes it instead (`fmax` is not in the weights: default 50 unless given).

        Raises:
            CMPCheckpointError: the file is not a torch checkpoint, would need arbitrary unpickling,
                or its keys/shapes do not fit.
        """
        state = _read_state_dict(path, map_location)
        if not config:
            config = infer_config(state, path)
        with torch.device("meta"):
            model = cls(**config)
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        fatal_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        mismatched = [f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}"
                      for k, v in expected.items() if k in state and state[k].shape != v.shape]
        if fatal_missing or unexpected or mismatched:
            raise CMPCheckpointError(
                f"{path} does not fit CMP({dict(config)}): "
                f"missing {fatal_missing[:10]} ({len(fatal_missing)}), unexpected {unexpected[:10]} "
                f"({len(unexpected)}), shape mismatches {mismatched[:10]} ({len(mismatched)})"
            )
        if missing:
            logger.info("%s has no num_batches_tracked buffers (%d); set to 0", path, len(missing))
            device = next(iter(state.values())).device
            state.update({k: torch.zeros((), dtype=torch.long, device=device) for k in missing})
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()


def infer_config(state: dict[str, torch.Tensor], path: str | PathLike = "checkpoint") -> dict:
    """CMP `__init__` arguments that fit a (prefix-stripped) state dict, read off its tensor shapes.

    layers: number of blocks per ResNet stage; base_width: `conv1` outputs; img_enc_dim: `conv5`
    outputs; sparse_enc_dim: ShallowNet's first conv outputs; decoder_width: `decoder1` width;
    nbins: half the head's outputs. `fmax` is not stored in the weights and keeps its default.

    Raises:
        CMPCheckpointError: a key the architecture is read from is absent.
    """
    def out_channels(key: str) -> int:
        if key not in state or state[key].ndim < 1:
            raise CMPCheckpointError(f"{path} does not look like a CMP checkpoint: it has no {key!r} "
                                     f"(needed to infer the network size)")
        return int(state[key].shape[0])

    layers = []
    for stage in range(1, 5):
        prefix = f"image_encoder.layer{stage}."
        blocks = {k[len(prefix):].split(".", 1)[0] for k in state if k.startswith(prefix)}
        if not blocks or not all(b.isdigit() for b in blocks):
            raise CMPCheckpointError(f"{path} does not look like a CMP checkpoint: no blocks under {prefix!r}")
        layers.append(max(int(b) for b in blocks) + 1)
    return {
        "layers": tuple(layers),
        "base_width": out_channels("image_encoder.conv1.weight"),
        "img_enc_dim": out_channels("image_encoder.conv5.weight"),
        "sparse_enc_dim": out_channels("flow_encoder.features.0.weight"),
        "decoder_width": out_channels("flow_decoder.decoder1.0.weight"),
        "nbins": out_channels("flow_decoder.head.weight") // 2,
    }


def _read_state_dict(path: str | PathLike, map_location: str | torch.device) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) -> the state dict with the `module.` prefix stripped."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            unsupported = [ln for ln in lines if ln.startswith("Unsupported")]
            if unsupported and unsupported[0].startswith("Unsupported operand"):  # not pickle data at all
                raise CMPCheckpointError(f"{path} is not a torch checkpoint ({unsupported[0]})") from err
            detail = unsupported[0] if unsupported else next((ln for ln in lines if "Unpickler" in ln), lines[0])
            raise CMPCheckpointError(
                f"{path} holds objects other than tensors and plain containers; refusing to unpickle it "
                f"(torch.load weights_only=True): {detail}"
            ) from err
        raise CMPCheckpointError(f"{path} is not a torch checkpoint: {err}") from err
    except (RuntimeError, EOFError, KeyError, ValueError, UnicodeDecodeError) as err:
        raise CMPCheckpointError(f"{path} is not a torch checkpoint: {type(err).__name__}: {err}") from err
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CMPCheckpointError(f"{path} has no state dict of tensors (found {type(obj).__name__})")
    return {(k[len(WRAPPER_PREFIX):] if k.startswith(WRAPPER_PREFIX) else k): v for k, v in obj.items()}
