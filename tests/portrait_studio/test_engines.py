import pytest

from portrait_studio.engines import select as engines
from portrait_studio.engines import choose_engine as select_engine
from portrait_studio.errors import MissingCheckpointsError

from .test_ckpts import populate


def test_warp_needs_nothing(tmp_path):
    assert select_engine("warp", tmp_path).name == "warp"


def test_explicit_mofa_names_the_missing_files(tmp_path):
    with pytest.raises(MissingCheckpointsError, match="model_index.json"):
        select_engine("mofa", tmp_path)


@pytest.mark.parametrize("gpu", [False, True])
def test_auto_with_verified_checkpoints(tmp_path, monkeypatch, gpu):
    populate(tmp_path)
    monkeypatch.setattr(engines, "cuda_available", lambda: gpu)
    choice = select_engine("auto", tmp_path)
    assert choice.name == ("mofa" if gpu else "warp")
    assert ("no GPU" in choice.reason) != gpu


def test_auto_with_a_gpu_but_checkpoints_that_do_not_verify(tmp_path, monkeypatch):
    populate(tmp_path, tweak=("svd/unet", lambda shapes: shapes.update({"conv_in.weight": (1, 8, 3, 3)})))
    monkeypatch.setattr(engines, "cuda_available", lambda: True)
    choice = select_engine("auto", tmp_path)
    assert choice.name == "warp" and "do not verify" in choice.reason and "svd/unet" in choice.reason


def test_auto_without_checkpoints(tmp_path):
    choice = select_engine("auto", tmp_path)
    assert choice.name == "warp" and "not found" in choice.reason
