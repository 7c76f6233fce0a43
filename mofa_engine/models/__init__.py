"""The MOFA networks: CMP and its backbone, the motion-field adapters (flow encoder, occlusion, softsplat), the UNet.

Import from the modules (`mofa_engine.models.cmp`, ...) or the names `mofa_engine` exports.
"""
