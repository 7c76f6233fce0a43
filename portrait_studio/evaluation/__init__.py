"""`evaluate`: measure any talking-portrait video with numbers and a picture, offline, no downloaded weights.

    from portrait_studio.evaluation import EvaluateOptions, evaluate_video, format_table, plot_reports
    result = evaluate_video("take1.mp4", EvaluateOptions(image=Path("portrait.png")))

One module per family of measures (each documents its definition): `lipsync` (lip sync, silence),
`control` (asked vs achieved landmarks), `drift` (colour, sharpness and geometry per window),
`stillness` (background), `jitter`, `fileinfo` (the file); `colour` implements CIEDE2000 and CPBD;
`measure` runs them all in one streamed pass; `report` and `plot` present the results.
"""

from .fileinfo import FileInfo, Limits, probe_video
from .measure import VideoMeasures, evaluate_video, measure_frames, summarise
from .options import EvaluateOptions
from .plot import plot_reports
from .report import format_table, to_json, write_json

__all__ = ["EvaluateOptions", "FileInfo", "Limits", "VideoMeasures", "evaluate_video", "format_table", "measure_frames",
           "plot_reports", "probe_video", "summarise", "to_json", "write_json"]
