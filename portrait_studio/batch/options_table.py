"""Render options by their long names: the one table job files, the job API and the CLI share.

A key is an option's long name (`head_motion`; `head-motion` is accepted too). The table is built
from the options dataclasses themselves, so a new field of `RenderOptions` or `MofaOptions` is a new
job key without any change here. Values are converted from what a job file or a JSON body holds
(YAML/JSON scalars or CSV strings) to the field's type.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ..options import MofaOptions, RenderOptions

MAX_TEXT = 4096  # longest string value accepted for any option (characters)


class OptionValueError(ValueError):
    """A value that does not fit its option; the message never contains the unbounded value."""


@dataclass(frozen=True)
class OptionSpec:
    """One render option as a job key."""

    name: str  # long name with underscores (`head_motion`)
    owner: Literal["render", "mofa"]  # which dataclass holds it
    kind: Literal["bool", "int", "float", "str", "path", "choice"]  # how values are converted
    optional: bool  # whether None is a valid value
    choices: tuple[str, ...]  # allowed values of a `choice` option
    default: Any  # the dataclass default
    help: str  # one line for docs (the CLI help when the field carries it)


def _kind(tp: Any) -> tuple[str, bool, tuple[str, ...]]:
    """(kind, optional, choices) of a resolved type annotation."""
    args = typing.get_args(tp)
    optional = type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        tp = rest[0] if len(rest) == 1 else tp
    if typing.get_origin(tp) is Literal:
        return "choice", optional, tuple(str(a) for a in typing.get_args(tp))
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("path", Path)):
        if tp is cls:
            return kind, optional, ()
    raise TypeError(f"option type {tp!r} has no job-file conversion")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]


@lru_cache(maxsize=1)
def option_specs() -> dict[str, OptionSpec]:
    """Every render option by its long name (underscores), in dataclass order."""
    specs: dict[str, OptionSpec] = {}
    for owner, cls in (("render", RenderOptions), ("mofa", MofaOptions)):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                continue  # the nested MofaOptions: its own fields are listed under "mofa"
            kind, optional, choices = _kind(hints[f.name])
            specs[f.name] = OptionSpec(f.name, owner, kind, optional, choices, _default(f),  # type: ignore[arg-type]
                                       str(f.metadata.get("help", "")))
    return specs


def canonical_key(key: object) -> str | None:
    """The long option name for a key as written (`head-motion` -> `head_motion`); None if unknown."""
    if not isinstance(key, str) or len(key) > 64:
        return None
    name = key.strip().replace("-", "_")
    return name if name in option_specs() else None


def brief(value: object, limit: int = 40) -> str:
    """A bounded rendering of a user value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "..."


def convert(spec: OptionSpec, value: object, base: Path | None) -> Any:
    """Convert a job-file/JSON value to the option's type; relative paths resolve against `base`.

    None and "" (an empty CSV cell) mean "not given" and are handled by the caller.
    Raises OptionValueError with a bounded message.
    """
    kind = spec.kind
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise OptionValueError(f"{spec.name}: text longer than {MAX_TEXT} characters")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise OptionValueError(f"{spec.name} must be true or false, got {brief(value)}")
    if kind == "int":
        if isinstance(value, bool):
            raise OptionValueError(f"{spec.name} must be an integer, got {brief(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise OptionValueError(f"{spec.name} must be an integer, got {brief(value)}")
    if kind == "float":
        if isinstance(value, bool):
            raise OptionValueError(f"{spec.name} must be a number, got {brief(value)}")
        try:
            number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise OptionValueError(f"{spec.name} must be a number, got {brief(value)}") from None
        if not math.isfinite(number):
            raise OptionValueError(f"{spec.name} must be a finite number, got {brief(value)}")
        return number
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise OptionValueError(f"{spec.name} must be a single value, got a {type(value).__name__}")
    text = str(value).strip()
    if kind == "choice":
        if text not in spec.choices:
            raise OptionValueError(f"{spec.name} must be one of {', '.join(spec.choices)}, got {brief(text)}")
        return text
    if kind == "path":
        path = Path(text).expanduser()
        return path if path.is_absolute() or base is None else base / path
    return text


def build_options(values: dict[str, Any], base: RenderOptions | None = None) -> RenderOptions:
    """RenderOptions from already converted values by long name, over `base` (default: the defaults)."""
    base = base or RenderOptions()
    specs = option_specs()
    render = {k: v for k, v in values.items() if specs[k].owner == "render"}
    mofa = {k: v for k, v in values.items() if specs[k].owner == "mofa"}
    return dataclasses.replace(base, **render, mofa=dataclasses.replace(base.mofa, **mofa))


def options_to_dict(options: RenderOptions) -> dict[str, Any]:
    """The flat {long name: value} view of options (paths as strings), for manifests and summaries."""
    flat: dict[str, Any] = {}
    for name, spec in option_specs().items():
        value = getattr(options.mofa if spec.owner == "mofa" else options, name)
        flat[name] = str(value) if isinstance(value, Path) else value
    return flat
