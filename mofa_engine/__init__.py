"""Motion hints, sparse-to-dense flow, the MOFA adapters on SVD-xt, and the warp renderer.

Never imports `landmark_drivers`, `portrait_studio` or streamlit. Heavy modules (diffusers) load on
first use of their names, so the warp engine imports quickly.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # motion hints and the warp engine
    "keypoint_sparse_flow": "sparse_flow", "keypoint_sparse_flow_384": "sparse_flow",
    "load_trajectories": "trajectories", "parse_trajectories": "trajectories",
    "trajectory_sparse_flow": "trajectories", "AnalyticFlow": "analytic_flow",
    "AnalyticFlowOptions": "analytic_flow", "face_region_mask": "regions", "WarpRenderer": "warp_renderer",
    "WarpRenderOptions": "warp_renderer", "flow_to_rgb": "visualize", "draw_landmarks": "visualize",
    # the MOFA networks and pipeline
    "CMP": "cmp", "softsplat": "softsplat", "TrajectoryAdapter": "flow_adapter",
    "LandmarkAdapter": "flow_adapter", "draw_pose_images": "pose_image", "MofaUNet": "unet",
    "MofaPipeline": "pipeline", "MofaPipelineOutput": "pipeline", "plan_windows": "periodic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
