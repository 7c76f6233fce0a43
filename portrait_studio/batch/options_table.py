"""Render options by their long names, as job files and the job API use them.

The table itself is `portrait_studio.options.option_specs()` (derived from the options dataclasses,
the same source the CLI flags come from), so a new render option is a new job key and a new API
option without any change here. This module adds what batch and the API need on top: the name of a
key as written (`head-motion` -> `head_motion`), which options name files, and a flat view of
options for manifests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..options import MofaOptions, OptionSpec, RenderOptions, option_specs


@lru_cache(maxsize=1)
def specs() -> dict[str, OptionSpec]:
    """Every render option by its long name (underscores), render options first."""
    return {s.name: s for s in option_specs() if "render" in s.scope}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Field names and CLI long names (without `--`, underscores) -> field name (`mofa_mode` -> `mode`)."""
    names = {name: name for name in specs()}
    for name, spec in specs().items():
        names.setdefault(spec.flag.lstrip("-").replace("-", "_"), name)
    return names


def canonical_key(key: object) -> str | None:
    """The option a key names: its field name or its CLI long name, with `-` or `_`
    (`head-motion` -> `head_motion`, `mofa-mode` -> `mode`); None if unknown."""
    if not isinstance(key, str) or len(key) > 64:
        return None
    return _aliases().get(key.strip().lstrip("-").replace("-", "_"))


def is_path(name: str) -> bool:
    """Whether the option names a file or folder."""
    return specs()[name].kind is Path


def options_to_dict(options: RenderOptions) -> dict[str, Any]:
    """The flat {long name: value} view of options (paths as strings), for manifests and summaries."""
    flat: dict[str, Any] = {}
    for name, spec in specs().items():
        value = getattr(options.mofa if spec.owner is MofaOptions else options, name)
        flat[name] = str(value) if isinstance(value, Path) else value
    return flat


def brief(value: object, limit: int = 40) -> str:
    """A bounded rendering of a user value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "..."
