import json
import struct

import pytest
import torch

from portrait_studio import cli
from portrait_studio.ckpts import (
    CMP_CKPT, MOFA_FILES, check_ckpts, load_manifest, locate, safetensors_shapes,
)
from portrait_studio.download import allow_patterns


def write_safetensors_header(path, shapes, dtype="F16"):
    """A safetensors header listing `shapes` (no data: the checker reads headers only)."""
    header = {key: {"dtype": dtype, "shape": list(shape), "data_offsets": [0, 0]} for key, shape in shapes.items()}
    blob = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)


def populate(root, clone_layout=True, skip=(), tweak=None):
    """Create every MOFA file under `root` with headers matching the manifests."""
    for spec in MOFA_FILES:
        if spec.key in skip:
            continue
        rel = spec.paths[0]
        if not clone_layout and rel.startswith("ckpts/"):
            rel = rel[len("ckpts/"):]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text("{}")
        elif spec.manifest == "cmp":
            # stride-0 views of one element: torch.save stores one element per tensor, not 28M params
            state = {k: torch.zeros(1).expand(*v) if v else torch.zeros(()) for k, v in load_manifest("cmp").items()}
            torch.save({"step": 42000, "state_dict": state, "optimizer": {}}, path)
        elif spec.manifest:
            shapes = dict(load_manifest(spec.manifest))
            if tweak and spec.key == tweak[0]:
                tweak[1](shapes)
            write_safetensors_header(path, shapes)
        else:
            write_safetensors_header(path, {"w": (1,)})


def test_empty_dir_names_every_missing_file(tmp_path):
    report = check_ckpts(tmp_path)
    assert not report.ok
    assert {f.spec.key for f in report.problems} == {s.key for s in MOFA_FILES}
    assert all(f.status == "missing" for f in report.files)


@pytest.mark.parametrize("clone_layout", [True, False])
def test_complete_tree_verifies_in_both_layouts(tmp_path, clone_layout):
    populate(tmp_path, clone_layout=clone_layout)
    report = check_ckpts(tmp_path)
    assert report.ok, [(f.spec.key, f.status, f.detail) for f in report.problems]


def test_wrong_shape_and_missing_keys_are_reported(tmp_path):
    def shrink(shapes):
        shapes["conv_in.weight"] = (16, 8, 3, 3)
        del shapes["controlnet_mid_block.weight"]

    populate(tmp_path, tweak=("ldmk_controlnet", shrink), skip=("svd/vae",))
    report = check_ckpts(tmp_path)
    by_key = {f.spec.key: f for f in report.files}
    assert by_key["ldmk_controlnet"].status == "wrong-shape"
    assert "conv_in.weight" in by_key["ldmk_controlnet"].detail and "1 keys missing" in by_key["ldmk_controlnet"].detail
    assert by_key["svd/vae"].status == "missing"
    assert by_key["traj_controlnet"].status == "present"
    assert by_key["cmp"].status == "present"


def test_unreadable_file(tmp_path):
    populate(tmp_path)
    spec = next(s for s in MOFA_FILES if s.key == "traj_controlnet")
    locate(tmp_path, spec).write_bytes(b"garbage")
    report = check_ckpts(tmp_path)
    assert {f.spec.key: f.status for f in report.files}["traj_controlnet"] == "unreadable"


def test_header_is_read_without_tensors(tmp_path):
    path = tmp_path / "x.safetensors"
    write_safetensors_header(path, {"a": (2, 3), "b": ()})
    assert safetensors_shapes(path) == {"a": (2, 3), "b": ()}


def test_check_ckpts_cli_on_empty_dir(tmp_path, capsys):
    assert cli.main(["check-ckpts", "--ckpt-dir", str(tmp_path)]) == 2
    out = capsys.readouterr()
    for spec in MOFA_FILES:
        assert spec.key in out.out
    assert out.out.count("missing") >= len(MOFA_FILES)
    assert out.err.startswith("error:") and out.err.count("\n") == 1


def test_env_var_sets_default_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTRAIT_STUDIO_CKPTS", str(tmp_path))
    cli.main(["check-ckpts", "--quick"])
    assert str(tmp_path) in capsys.readouterr().out


def test_download_fetches_exactly_the_needed_files():
    patterns = allow_patterns()
    assert CMP_CKPT in patterns
    assert all(any(p in patterns for p in spec.paths) for spec in MOFA_FILES)
    assert not any("*" in p for p in patterns)


def test_download_refuses_without_licence_acceptance(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert cli.main(["download", "--ckpt-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Community License" in err and "--accept-license" in err
    assert list(tmp_path.iterdir()) == []
