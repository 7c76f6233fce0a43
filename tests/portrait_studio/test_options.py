"""One source for every option (issue #7): CLI flags, defaults, choices and job keys come from the
options dataclasses."""

import dataclasses
from pathlib import Path

import pytest

from portrait_studio import InputError, MofaOptions, RenderOptions
from portrait_studio.cli import _options, build_parser
from portrait_studio.options import option_specs, options_from_values


def _subparser(name):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices[name]


@pytest.mark.parametrize("command", ["render", "landmarks"])
def test_every_option_of_a_command_has_its_flag_and_no_default_of_its_own(command):
    _, sub = _subparser(command)
    flags = {opt: a for a in sub._actions for opt in a.option_strings}
    for spec in option_specs():
        if command in spec.scope:
            action = flags[spec.flag]
            assert action.default is None  # the default lives in the dataclass only
            assert spec.help and spec.help.split(" (default")[0] in (action.help or "")
            if spec.choices:
                assert tuple(action.choices) == spec.choices
        else:
            assert spec.flag not in flags


def test_flags_left_out_give_the_dataclass_defaults(tmp_path):
    parser, _ = _subparser("render")
    args = parser.parse_args(["render", "--image", "p.png", "-o", "o.mp4"])
    assert _options(args, "render") == RenderOptions()


def test_flags_reach_their_fields():
    parser, _ = _subparser("render")
    args = parser.parse_args(["render", "--image", "p.png", "-o", "o.mp4", "--head-motion", "0.5", "--steps", "7",
                              "--cpu-offload", "--language", "acoustic", "--dtype", "bf16"])
    o = _options(args, "render")
    assert (o.head_motion, o.language, o.mofa.steps, o.mofa.cpu_offload, o.mofa.dtype) == (0.5, "acoustic", 7,
                                                                                          True, "bf16")


def test_values_by_long_name_convert_strings_and_refuse_unknown_keys():
    o = options_from_values({"head-motion": "0.25", "fps": "12", "steps": "3", "cpu_offload": "yes",
                             "trajectory": "t.json", "seed": None})
    assert (o.head_motion, o.fps, o.mofa.steps, o.mofa.cpu_offload, o.trajectory, o.seed) == (
        0.25, 12.0, 3, True, Path("t.json"), 0)
    with pytest.raises(InputError, match="unknown option 'colour'"):
        options_from_values({"colour": "red"})
    with pytest.raises(InputError, match="--steps takes int"):
        options_from_values({"steps": "many"})
    with pytest.raises(InputError, match="--fps takes float"):
        options_from_values({"fps": True})


def test_every_field_is_an_option_except_the_nested_mofa_settings():
    names = {s.name for s in option_specs()}
    fields = {f.name for cls in (RenderOptions, MofaOptions) for f in dataclasses.fields(cls)}
    assert fields - names == {"mofa"}


def test_mofa_mode_layout_and_checkpoint_options_come_from_the_dataclass(tmp_path):
    """Issue #13: --mofa-mode, --temporal-context, --checkpoint-every and --resume are MofaOptions fields;
    their choices are the engine's own."""
    from typing import get_args

    from mofa_engine.pipeline.animate import MofaMode
    from mofa_engine.models.temporal_context import TemporalContextLayout

    specs = {s.flag: s for s in option_specs()}
    assert specs["--mofa-mode"].choices == get_args(MofaMode) and specs["--mofa-mode"].default == "auto"
    assert specs["--temporal-context"].choices == get_args(TemporalContextLayout)
    assert specs["--temporal-context"].default == "reference"
    assert specs["--resume"].kind is bool and specs["--checkpoint-every"].default == 5
    parser, _ = _subparser("render")
    args = parser.parse_args(["render", "--image", "p.png", "-o", "o.mp4", "--mofa-mode", "keypoint",
                              "--temporal-context", "trained", "--resume", "--checkpoint-every", "3"])
    assert _options(args, "render").mofa == MofaOptions(mode="keypoint", temporal_context="trained", resume=True,
                                                        checkpoint_every=3)

    traj = tmp_path / "t.json"
    traj.write_text('{"trajectories": []}')
    keypoint = MofaOptions(mode="keypoint")
    with pytest.raises(InputError, match="--mofa-mode keypoint runs the landmark adapter alone"):
        RenderOptions(engine="mofa", trajectory=traj, mofa=keypoint).validate()
    RenderOptions(engine="warp", trajectory=traj, mofa=keypoint).validate()  # mofa settings do not apply
    for bad, message in ((MofaOptions(mode="traj"), "--mofa-mode"),
                         (MofaOptions(temporal_context="fixed"), "--temporal-context"),
                         (MofaOptions(checkpoint_every=-1), "--checkpoint-every")):
        with pytest.raises(InputError, match=message):
            RenderOptions(mofa=bad).validate()


def test_the_readme_documents_every_render_option():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    assert [s.flag for s in option_specs() if s.flag not in readme] == []
