"""Portrait Studio: one portrait photo + a driving signal -> a talking-portrait video.

The public API::

    from portrait_studio import Studio, RenderOptions
    with Studio(RenderOptions(head_motion=0.5)) as studio:
        result = studio.render("me.jpg", "speech.wav", "talk.mp4")
        with studio.live("me.jpg", LiveOptions(driver="audio")) as session:   # real time
            session.push_audio(chunk, t); frame = next(session.frames())

Names load on first use, so `python -m portrait_studio --help` starts quickly.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Studio": "studio", "RenderResult": "studio", "RenderOptions": "options", "MofaOptions": "options",
    "RenderCancelled": "errors", "InputError": "errors", "MissingCheckpointsError": "errors",
    "LIMITS": "limits", "check_output_path": "outputs",
    "LiveOptions": "live", "LiveSession": "live", "LiveFrame": "live", "LiveStats": "live",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
