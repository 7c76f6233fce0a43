"""Motion hints, sparse-to-dense flow, the MOFA adapters on SVD-xt, and the warp renderer.

Never imports `landmark_drivers`, `portrait_studio` or streamlit.
"""
