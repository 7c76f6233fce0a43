"""The limits are written once (limits.py) and shown the same in --help and the README."""

from __future__ import annotations

import pytest

from portrait_studio import cli
from portrait_studio.limits import LIMITS, limits_markdown

from .hardening_utils import ROOT


def test_readme_limits_table_matches_limits_py():
    assert limits_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["render", "landmarks"])
def test_help_tells_the_truth(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "at least one driver: --audio, --driving-video" in text
    assert "never overwrite an input" in text and "examples:" in text and f"python -m portrait_studio {command}" in text
    for name, limit in LIMITS.rows():
        assert name.replace("_", " ") in text and str(limit) in text, name
    assert "143 SIGTERM" in text


def test_every_limit_is_documented():
    for name, limit in LIMITS.rows():
        assert limit.value > 0 and limit.unit and len(limit.covers) > 20, name
