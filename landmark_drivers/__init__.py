"""Face analysis, face motion and the drivers that produce it (audio, video, keyframes).

Never imports `mofa_engine`, `portrait_studio` or streamlit.
"""

from .blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, blendshape_index
from .motion import FaceMotion, LandmarkTrack
from .source_face import SourceFace

__all__ = [
    "BLENDSHAPE_NAMES", "NUM_BLENDSHAPES", "blendshape_index",
    "FaceMotion", "LandmarkTrack", "SourceFace",
]
