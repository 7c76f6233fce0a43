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

from .face_analysis import (FaceAnalyzer, FaceModelMissingError, FaceNumberError, FaceTooSmallError,  # noqa: E402
                            NoFaceError, analyze_face, faces_left_to_right)
from .ibug68 import mesh_to_ibug68  # noqa: E402

__all__ += [
    "FaceAnalyzer", "analyze_face", "NoFaceError", "FaceTooSmallError", "FaceModelMissingError", "mesh_to_ibug68",
    "FaceNumberError", "faces_left_to_right",
]

from .audio.audio_driver import AudioDriverOptions, drive_from_audio  # noqa: E402
from .audio.phonemes import PhoneAlignmentError, PhoneSegment, align_phones, recognize_phones  # noqa: E402

__all__ += [
    "AudioDriverOptions", "drive_from_audio", "PhoneSegment", "PhoneAlignmentError", "align_phones",
    "recognize_phones",
]

from .video_driver import (DrivingVideoError, DrivingVideoInfo, VideoDriverOptions, drive_from_video,  # noqa: E402
                           probe_driving_video)

__all__ += ["VideoDriverOptions", "drive_from_video", "probe_driving_video", "DrivingVideoInfo", "DrivingVideoError"]

from .expressions import (ExpressionError, ExpressionTrack, apply_expression, expression_from_sliders,  # noqa: E402
                          load_expression, motion_from_sliders, parse_expression)
from .presets import PRESETS  # noqa: E402
from .rig import FaceRig  # noqa: E402

__all__ += [
    "ExpressionError", "ExpressionTrack", "apply_expression", "expression_from_sliders", "load_expression",
    "motion_from_sliders", "parse_expression", "PRESETS", "FaceRig",
]
