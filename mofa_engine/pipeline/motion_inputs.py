"""Dense motion inputs for `MofaPipeline` from sparse hints, with its optional `cmp` component.

Owns `MotionInputsMixin`, the pipeline's `prepare_landmark_flow` / `prepare_dense_flow` methods: thin
glue from the pipeline's components to `conditioning.densify_landmark_flow` / `densify_sparse_flow`
(CMP, chunk by chunk). Their results are what `MofaPipeline.__call__` takes as `landmark_flow` /
`trajectory_flow`.
"""

from __future__ import annotations

import torch

from mofa_engine.models.cmp import CMP, CMPImageFeatures

from .conditioning import ChunkProgress, FrameInput, densify_landmark_flow, densify_sparse_flow


class MotionInputsMixin:
    """`MofaPipeline`'s sparse -> dense flow methods; needs the host's `cmp` and `vae_scale_factor`."""

    cmp: CMP | None
    vae_scale_factor: int

    def _cmp(self) -> CMP:
        if self.cmp is None:
            raise ValueError("dense flows from sparse hints need the `cmp` component")
        return self.cmp

    def prepare_landmark_flow(self, image: torch.Tensor, landmarks, chunk_size: int = 8, latent_grid: bool = True,
                              grid_size: int = 384, features: CMPImageFeatures | None = None,
                              progress: ChunkProgress | None = None) -> torch.Tensor:
        """`landmark_flow` from a landmark track `[N, K, 2]` with the `cmp` component (`densify_landmark_flow`;
        `features = self.cmp.image_features(image)` shares one image encoding across calls)."""
        return densify_landmark_flow(self._cmp(), image, landmarks, chunk_size, latent_grid, grid_size,
                                     self.vae_scale_factor, features, progress)

    def prepare_dense_flow(self, image: torch.Tensor, sparse_flow: FrameInput, sparse_mask: FrameInput,
                           num_frames: int, chunk_size: int = 8, latent_grid: bool = True,
                           features: CMPImageFeatures | None = None,
                           progress: ChunkProgress | None = None) -> torch.Tensor:
        """Dense flow from sparse hints on the CMP grid with the `cmp` component (`densify_sparse_flow`)."""
        return densify_sparse_flow(self._cmp(), image, sparse_flow, sparse_mask, num_frames, chunk_size,
                                   latent_grid, self.vae_scale_factor, features, progress)
