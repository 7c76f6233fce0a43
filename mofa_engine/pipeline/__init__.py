"""SVD-xt sampling with MOFA control: conditioning, CMP chunking, periodic windows, loading, pose images.

Import from the modules (`mofa_engine.pipeline.pipeline`, ...) or the names `mofa_engine` exports.
"""
