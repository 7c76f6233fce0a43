"""SadTalker PoseVAE (prefix `audio2pose.`): audio + pose style -> head-pose motion, 32 frames at a time.

Inference uses only the audio encoder and the CVAE *decoder*: a latent `z ~ N(0, I)[64]` plus the style's
`classbias` row, the reference pose (3 angles + 3 translations) and the 32 audio embeddings mapped to
6-d each are fed to an MLP (262 -> 128 -> 192, sigmoid), reshaped to 32 x 6, refined by a ResUnet and
mapped by `pose_linear` to the pose *motion* (added to the reference pose). The CVAE encoder and the
motion discriminator are training-only: they exist here so the published state dict loads strictly.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from scipy.signal import savgol_filter
from torch import nn

from .audio_encoder import EMBED_DIM, AudioEncoder
from .res_unet import ResUnet

SEQ_LEN = 32  # frames per CVAE window
LATENT = 64  # CVAE latent size
NUM_STYLES = 46  # pose styles (rows of classbias)
POSE_DIM = 6  # pitch, yaw, roll (rad; BFM angles x, y, z) + translation x, y, z
AUDIO_OUT = 6  # per-frame audio feature fed to the MLP
SAVGOL_WINDOW, SAVGOL_ORDER = 13, 2


class FrameAudioEncoder(nn.Module):
    """The pose net's own audio encoder; the reference wraps it once more (keys `audio_encoder.{i}...`)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = AudioEncoder()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """mels: float32 [B, 1, 80, 16] in [-4, 4] -> float32 [B, 512]."""
        return self.audio_encoder(mels)


class PoseDecoder(nn.Module):
    """CVAE decoder (`netG.decoder`): (z, style, reference pose, 32 audio embeddings) -> 32 pose motions."""

    def __init__(self) -> None:
        super().__init__()
        self.classbias = nn.Parameter(torch.zeros(NUM_STYLES, LATENT))
        self.resunet = ResUnet()
        self.MLP = nn.Sequential(OrderedDict([
            ("L0", nn.Linear(POSE_DIM + LATENT + SEQ_LEN * AUDIO_OUT, 128)), ("A0", nn.ReLU()),
            ("L1", nn.Linear(128, SEQ_LEN * POSE_DIM)), ("sigmoid", nn.Sigmoid())]))
        self.pose_linear = nn.Linear(POSE_DIM, POSE_DIM)
        self.linear_audio = nn.Linear(EMBED_DIM, AUDIO_OUT)

    def forward(self, z: torch.Tensor, style: torch.Tensor, ref_pose: torch.Tensor,
                audio_emb: torch.Tensor) -> torch.Tensor:
        """z: float32 [B, 64] standard normal; style: int64 [B] in 0..45; ref_pose: float32 [B, 6];
        audio_emb: float32 [B, 32, 512]. Returns float32 [B, 32, 6] pose motion (relative to ref_pose).
        """
        b = z.shape[0]
        audio = self.linear_audio(audio_emb).reshape(b, SEQ_LEN * AUDIO_OUT)  # [B, 32, 6] -> [B, 192]
        x = self.MLP(torch.cat([ref_pose, z + self.classbias[style], audio], dim=-1))  # [B, 262] -> [B, 192]
        x = self.resunet(x.reshape(b, 1, SEQ_LEN, POSE_DIM))  # [B, 192] -> [B, 1, 32, 6]
        return self.pose_linear(x.squeeze(1))  # [B, 1, 32, 6] -> [B, 32, 6]


class PoseEncoder(nn.Module):
    """CVAE encoder (`netG.encoder`), training-only: weights kept for strict loading, never called."""

    def __init__(self) -> None:
        super().__init__()
        self.classbias = nn.Parameter(torch.zeros(NUM_STYLES, LATENT))
        self.resunet = ResUnet()
        in_size = POSE_DIM + SEQ_LEN * POSE_DIM + SEQ_LEN * AUDIO_OUT + LATENT  # ref, pose emb, audio, class = 454
        self.MLP = nn.Sequential(OrderedDict([("L0", nn.Linear(in_size, 128)), ("A0", nn.ReLU())]))
        self.linear_means = nn.Linear(128, LATENT)
        self.linear_logvar = nn.Linear(128, LATENT)
        self.linear_audio = nn.Linear(EMBED_DIM, AUDIO_OUT)


class CVAE(nn.Module):
    """`netG`: encoder (unused) + decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PoseEncoder()
        self.decoder = PoseDecoder()


class _ConvNormAct(nn.Module):
    """Conv1d (no bias) + BatchNorm1d (+ LeakyReLU in the reference); keys `conv.weight`, `norm.*`."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, bias=False)
        self.norm = nn.BatchNorm1d(cout)


class PoseDiscriminator(nn.Module):
    """`netD_motion`, training-only: weights kept for strict loading, never called."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(_ConvNormAct(POSE_DIM, 256, 4), _ConvNormAct(256, 512, 4),
                                 _ConvNormAct(512, 1024, 3), nn.Conv1d(1024, 1, 3))


class Audio2Pose(nn.Module):
    """Keys: `audio_encoder.audio_encoder.*`, `netG.{encoder,decoder}.*`, `netD_motion.seq.*`."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder = FrameAudioEncoder()
        self.netG = CVAE()
        self.netD_motion = PoseDiscriminator()

    @torch.no_grad()
    def predict(self, mels: torch.Tensor, ref_pose: torch.Tensor, pose_style: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Pose for every frame; frame 0 is the reference pose itself (zero motion).

        mels: float32 [N, 1, 80, 16] (frame i = audio frame i); ref_pose: float32 [6] (angles in rad,
        translation); pose_style: 0..45; generator: CPU torch generator for the latents (one draw of
        [1, 64] per window, in window order). Returns float32 [N, 6] absolute pose, unsmoothed.
        """
        if not 0 <= pose_style < NUM_STYLES:
            raise ValueError(f"pose_style must be within 0..{NUM_STYLES - 1}, got {pose_style}")
        n = mels.shape[0]
        decoder = self.netG.decoder
        motions = [ref_pose.new_zeros((1, POSE_DIM))]
        if n > 1:
            emb = self.audio_encoder(mels[1:])  # [N-1, 1, 80, 16] -> [N-1, 512]
            style = torch.tensor([pose_style], dtype=torch.long, device=mels.device)
            for start, stop, keep in pose_windows(n - 1):
                window = emb[start:stop]
                if window.shape[0] < SEQ_LEN:  # fewer than 32 frames in all: repeat the first in front
                    pad = window[:1].expand(SEQ_LEN - window.shape[0], EMBED_DIM)
                    window = torch.cat([pad, window], dim=0)
                z = torch.randn(1, LATENT, generator=generator).to(mels.device)
                out = decoder(z, style, ref_pose[None], window[None])  # [1, 32, 6]
                motions.append(out[0, SEQ_LEN - keep:])
        return ref_pose[None] + torch.cat(motions, dim=0)  # [N, 6]


def pose_windows(num_frames: int, seq_len: int = SEQ_LEN) -> list[tuple[int, int, int]]:
    """How `num_frames` motion frames are cut into CVAE windows: (start, stop, keep) triples.

    Full windows of `seq_len` keep all their outputs; a remainder `re = num_frames % seq_len` is covered
    by the *last* `seq_len` frames (or all frames if fewer), of which only the last `re` outputs are kept.
    The kept outputs tile 0..num_frames-1 exactly once, in order.
    """
    div, re = divmod(num_frames, seq_len)
    windows = [(i * seq_len, (i + 1) * seq_len, seq_len) for i in range(div)]
    if re:
        windows.append((max(0, num_frames - seq_len), num_frames, re))
    return windows


def savgol_window(num_frames: int) -> int | None:
    """Savitzky-Golay window for `num_frames` frames: 13, or the largest odd number <= N when N < 13;
    None when N < 3 (a window of 1 cannot hold an order-2 fit: no smoothing)."""
    window = SAVGOL_WINDOW if num_frames >= SAVGOL_WINDOW else int((num_frames - 1) / 2) * 2 + 1
    return window if window > SAVGOL_ORDER else None


def smooth_pose(pose: np.ndarray) -> np.ndarray:
    """Savitzky-Golay (order 2, `savgol_window`) along time. pose: float [N, 6] -> float32 [N, 6]."""
    window = savgol_window(pose.shape[0])
    if window is None:
        return pose.astype(np.float32)
    return savgol_filter(pose, window, SAVGOL_ORDER, axis=0).astype(np.float32)
