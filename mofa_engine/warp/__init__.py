"""The CPU warp engine: analytic flow, gap map, mouth and eyelids, drag field, raster helpers, the renderer.

Import from the modules (`mofa_engine.warp.warp_renderer`, ...) or the names `mofa_engine` exports.
"""
