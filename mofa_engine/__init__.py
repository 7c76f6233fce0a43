"""Motion hints, sparse-to-dense flow, the MOFA adapters on SVD-xt, and the warp renderer.

Rooms: the motion hints shared by both engines at the top (`sparse_flow`, `trajectories`, `regions`,
`visualize`); `models/` (the networks), `pipeline/` (SVD sampling), `warp/` (the CPU renderer).

Never imports `landmark_drivers`, `portrait_studio` or streamlit. Heavy modules (diffusers) load on
first use of their names, so the warp engine imports quickly.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # motion hints shared by both engines
    "keypoint_sparse_flow": "sparse_flow", "keypoint_sparse_flow_384": "sparse_flow",
    "load_trajectories": "trajectories", "parse_trajectories": "trajectories",
    "trajectory_sparse_flow": "drag_hints", "face_region_mask": "regions",
    "flow_to_rgb": "visualize", "draw_landmarks": "visualize",
    "CameraMove": "camera", "CAMERA_NAMES": "camera", "parse_camera": "camera",
    # the warp engine
    "AnalyticFlow": "warp.analytic_flow", "AnalyticFlowOptions": "warp.analytic_flow",
    "WarpRenderer": "warp.warp_renderer", "WarpRenderOptions": "warp.warp_renderer", "MapWindow": "warp.raster",
    # the MOFA networks and pipeline
    "CMP": "models.cmp", "softsplat": "models.softsplat", "TrajectoryAdapter": "models.flow_adapter",
    "LandmarkAdapter": "models.flow_adapter", "MofaUNet": "models.unet", "draw_pose_images": "pipeline.pose_image",
    "MofaPipeline": "pipeline.pipeline", "MofaPipelineOutput": "pipeline.pipeline", "plan_windows": "pipeline.periodic",
    "set_temporal_context_layout": "models.temporal_context",
    "TemporalContextLayout": "models.temporal_context",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
