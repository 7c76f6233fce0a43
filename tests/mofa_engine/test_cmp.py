"""CMP sparse-to-dense network: published-checkpoint compatibility on `meta`, numerics on tiny CPU configs."""

import json
import math

import pytest
import torch
from torch import nn

from mofa_engine.models.cmp import CMP, CMPCheckpointError, bin_centres, logits_to_flow, upsample_flow
from tests.mofa_engine.tiny_configs import randomize_batchnorm_

TINY = dict(layers=(1, 1, 1, 1), base_width=8, img_enc_dim=16, sparse_enc_dim=8, decoder_width=16)
GRID = 64  # tiny tests run CMP on a 64x64 grid instead of 384x384


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    return randomize_batchnorm_(model, torch.Generator().manual_seed(seed))


def _hints(n: int, size: int = GRID, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n sparse maps with a few hint pixels each: ([n,2,S,S] flow, [n,2,S,S] mask)."""
    g = torch.Generator().manual_seed(seed)
    flow, mask = torch.zeros(n, 2, size, size), torch.zeros(n, 2, size, size)
    for i in range(n):
        rows, cols = torch.randint(0, size, (2, 6), generator=g)
        flow[i, :, rows, cols] = torch.randn(2, 6, generator=g) * 8
        mask[i, :, rows, cols] = 1.0
    return flow, mask


@pytest.fixture(scope="module")
def tiny() -> CMP:
    torch.manual_seed(0)
    return _randomise(CMP(**TINY)).eval()


@pytest.fixture(scope="module")
def full_meta() -> CMP:
    with torch.device("meta"):
        return CMP().eval()


# -- compatibility with the published checkpoint -------------------------------------------------------


def test_full_size_state_dict_equals_manifest(full_meta, fixtures):
    manifest = json.loads((fixtures / "manifests" / "manifest_cmp.json").read_text())
    ours = {"module." + k: list(v.shape) for k, v in full_meta.state_dict().items()}
    assert len(manifest) == 455
    assert sorted(set(ours) - set(manifest)) == [] and sorted(set(manifest) - set(ours)) == []
    assert ours == manifest


def test_parameter_count(full_meta, fixtures):
    # Spec §3 counts trainable parameters: 28,516,422 in 239 tensors. param_counts.json's "cmp"
    # (28,573,894) also counts the BN running_mean/running_var buffers (2 x 28,736 channels = 57,472),
    # but not the 72 scalar num_batches_tracked: 239 + 72*3 = 455 state-dict keys.
    counts = json.loads((fixtures / "param_counts.json").read_text())
    params = list(full_meta.parameters())
    n_params = sum(p.numel() for p in params)
    running = sum(b.numel() for name, b in full_meta.named_buffers() if "running_" in name)
    n_tracked = sum(1 for name, _ in full_meta.named_buffers() if name.endswith("num_batches_tracked"))
    assert n_params == 28_516_422
    assert len(params) == counts["cmp_param_tensors"] == 239
    assert running == 57_472 and n_tracked == 72
    assert n_params + running == counts["cmp"] == 28_573_894
    assert len(full_meta.state_dict()) == counts["cmp_state_keys"] == 455


def test_full_size_geometry(full_meta):
    """Strides, dilations and pools are not in the state dict: check them and the feature sizes at 384."""
    enc = full_meta.image_encoder
    assert (enc.conv1.stride, enc.conv1.padding) == ((2, 2), (3, 3))
    assert (enc.maxpool.kernel_size, enc.maxpool.stride, enc.maxpool.padding) == (3, 2, 1)
    assert enc.layer2[0].conv2.stride == (2, 2) and enc.layer2[0].downsample[0].stride == (2, 2)
    assert enc.layer2[0].conv1.stride == (1, 1)  # stride on the 3x3 conv
    for layer, d in ((enc.layer3, 2), (enc.layer4, 4)):
        for block in layer:
            assert (block.conv2.stride, block.conv2.dilation, block.conv2.padding) == ((1, 1), (d, d), (d, d))
        assert layer[0].downsample[0].stride == (1, 1)
    shallow = full_meta.flow_encoder.features
    assert (shallow[0].stride, shallow[0].padding) == ((2, 2), (2, 2))
    assert isinstance(shallow[3], nn.MaxPool2d) and isinstance(shallow[7], nn.AvgPool2d)
    for k in (2, 4, 8):
        pool = getattr(full_meta.flow_decoder, f"decoder{k}")[0]
        assert (pool.kernel_size, pool.stride) == (k, k)

    image = torch.zeros(1, 3, 384, 384, device="meta")
    feats = full_meta.image_encoder(image)
    assert feats.c1.shape[-2:] == (192, 192) and feats.l1.shape[-2:] == (96, 96)
    assert feats.enc.shape == (1, 256, 48, 48)
    logits = []
    handle = full_meta.flow_decoder.register_forward_hook(lambda m, i, o: logits.append(o))
    flow = full_meta(image, torch.zeros(1, 2, 384, 384, device="meta"), torch.zeros(1, 2, 384, 384, device="meta"))
    handle.remove()
    assert logits[0].shape == (1, 198, 192, 192)
    assert flow.shape == (1, 2, 384, 384)


def test_full_size_densify_plumbing_on_meta(full_meta):
    frame = torch.zeros(1, 3, 512, 448, device="meta")
    hints = torch.zeros(5, 2, 384, 384, device="meta")
    out = full_meta.densify(frame, hints, hints, batch_size=2)
    assert out.shape == (5, 2, 512, 448) and out.device.type == "meta"


# -- Fuser and resizing, against hand-computed values ------------------------------------------------------


def test_bin_centres():
    c = bin_centres(99, 50.0, dtype=torch.float64)
    assert c.shape == (99,)
    assert c[0].item() == pytest.approx(-50 + 50 / 99) and c[0].item() == pytest.approx(-49.4949, abs=1e-4)
    assert c[-1].item() == pytest.approx(49.4949, abs=1e-4)
    assert c[49].item() == pytest.approx(0.0, abs=1e-12)
    assert torch.allclose(c.diff(), torch.full((98,), 100 / 99, dtype=torch.float64))


@pytest.mark.parametrize(("jx", "jy"), [(0, 98), (49, 10), (73, 73)])
def test_fuser_one_hot_logits_give_bin_centre(jx, jy):
    logits = torch.zeros(2, 198, 3, 4)
    logits[:, jx] = 1000.0
    logits[:, 99 + jy] = 1000.0
    flow = logits_to_flow(logits)
    assert flow.shape == (2, 2, 3, 4)
    assert torch.allclose(flow[:, 0], torch.tensor(jx * 100 / 99 - 50 + 50 / 99), atol=1e-4)
    assert torch.allclose(flow[:, 1], torch.tensor(jy * 100 / 99 - 50 + 50 / 99), atol=1e-4)


def test_fuser_uniform_and_two_bin_logits():
    assert logits_to_flow(torch.full((1, 198, 2, 2), 3.0)).abs().max() < 1e-5
    logits = torch.full((1, 198, 1, 1), -1000.0)
    logits[0, [10, 11]] = 5.0  # x: equal mass on bins 10 and 11
    logits[0, 99 + 60] = 5.0 + math.log(3.0)  # y: 3:1 between bins 60 and 61
    logits[0, 99 + 61] = 5.0
    flow = logits_to_flow(logits)[0, :, 0, 0]
    c = lambda j: j * 100 / 99 - 50 + 50 / 99  # noqa: E731
    assert flow[0].item() == pytest.approx((c(10) + c(11)) / 2, abs=1e-4)
    assert flow[1].item() == pytest.approx(0.75 * c(60) + 0.25 * c(61), abs=1e-4)
    with pytest.raises(ValueError, match="198"):
        logits_to_flow(torch.zeros(1, 197, 2, 2))


def test_upsample_flow_is_nearest_with_axis_scaling():
    flow = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]])[None]  # [1,2,2,2]
    out = upsample_flow(flow, (4, 6))  # H x2, W x3
    expected_x = torch.tensor([[1.0] * 3 + [2.0] * 3] * 2 + [[3.0] * 3 + [4.0] * 3] * 2) * 3
    expected_y = torch.tensor([[10.0] * 3 + [20.0] * 3] * 2 + [[30.0] * 3 + [40.0] * 3] * 2) * 2
    assert torch.equal(out[0, 0], expected_x) and torch.equal(out[0, 1], expected_y)
    # source index floor(dst * in / out): 3 -> 4 rows picks [0,0,1,2], 3 -> 5 cols picks [0,0,1,1,2]
    flow = torch.arange(9.0).view(1, 1, 3, 3).repeat(1, 2, 1, 1)
    out = upsample_flow(flow, (4, 5))
    picked = torch.arange(9.0).view(3, 3)[[0, 0, 1, 2]][:, [0, 0, 1, 1, 2]]
    torch.testing.assert_close(out[0, 0], picked * (5 / 3))
    torch.testing.assert_close(out[0, 1], picked * (4 / 3))


# -- the network on tiny configs ---------------------------------------------------------------------------


def test_image_is_normalised_to_minus_one_one(tiny, monkeypatch):
    seen = []
    original = tiny.image_encoder.forward
    monkeypatch.setattr(tiny.image_encoder, "forward", lambda x: seen.append(x.clone()) or original(x))
    tiny.encode_image(torch.full((1, 3, GRID, GRID), 0.25))
    assert torch.equal(seen[0], torch.full((1, 3, GRID, GRID), -0.5))


def test_tiny_forward_is_finite_and_bounded(tiny):
    flow, mask = _hints(2)
    image = torch.rand(2, 3, GRID, GRID, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = tiny(image, flow, mask)
    assert out.shape == (2, 2, GRID, GRID)
    assert torch.isfinite(out).all() and out.abs().max() < 49.5
    assert out.std() > 0  # random weights give a non-constant field
    assert not torch.equal(out[0], out[1])  # and it depends on the hints


def test_concatenation_orders(tiny):
    """Spec §10.3: [sparse, mask], [img_enc, sparse_enc], [x1, x2, x4, x8], [f8, skip4], [f4, skip2]."""
    seen = {}
    dec = tiny.flow_decoder
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, (i[0], o)))
             for name, m in [("conv5", tiny.image_encoder.conv5), ("shallow", tiny.flow_encoder),
                             ("d1", dec.decoder1), ("d8", dec.decoder8), ("f8", dec.fusion8),
                             ("s4", dec.skipconv4), ("f4", dec.fusion4), ("s2", dec.skipconv2), ("f2", dec.fusion2)]]
    flow, mask = _hints(1)
    with torch.no_grad():
        tiny(torch.rand(1, 3, GRID, GRID), flow, mask)
    for h in hooks:
        h.remove()
    w, img_dim = TINY["decoder_width"], TINY["img_enc_dim"]
    assert torch.equal(seen["shallow"][0], torch.cat([flow, mask], dim=1))
    assert torch.equal(seen["d1"][0][:, :img_dim], seen["conv5"][1])
    assert torch.equal(seen["d1"][0][:, img_dim:], seen["shallow"][1])
    assert torch.equal(seen["f8"][0][:, :w], seen["d1"][1])
    d8 = torch.nn.functional.interpolate(seen["d8"][1], size=(GRID // 8,) * 2, mode="bilinear", align_corners=True)
    assert torch.equal(seen["f8"][0][:, 3 * w:], d8)
    assert torch.equal(seen["f4"][0][:, 2 * w:], seen["s4"][1])
    assert torch.equal(seen["f2"][0][:, w:], seen["s2"][1])


def test_logits_become_flow_and_are_upsampled_bilinear_align_corners(tiny, monkeypatch):
    # hand-made logits on a 2x2 coarse grid: x one-hot at bin 0 (left) / 98 (right), y at bin 49 (0)
    logits = torch.full((1, 198, 2, 2), -1000.0)
    logits[0, 0, :, 0] = logits[0, 98, :, 1] = logits[0, 99 + 49] = 0.0
    monkeypatch.setattr(tiny.flow_decoder, "forward", lambda x, s2, s4: logits)
    flow, mask = _hints(1)
    with torch.no_grad():
        out = tiny(torch.rand(1, 3, GRID, GRID), flow, mask)
    c0, c98 = -50 + 50 / 99, 98 * 100 / 99 - 50 + 50 / 99
    expected_x = c0 + (c98 - c0) * torch.arange(GRID) / (GRID - 1)  # linear from corner to corner
    torch.testing.assert_close(out[0, 0], expected_x.expand(GRID, GRID), atol=1e-4, rtol=0)
    assert out[0, 1].abs().max() < 1e-4


def test_densify_shares_image_features_and_equals_per_frame(tiny, monkeypatch):
    frame = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    flow, mask = _hints(5)
    calls = []
    original = tiny.image_encoder.forward
    monkeypatch.setattr(tiny.image_encoder, "forward", lambda x: calls.append(x.shape[0]) or original(x))
    batched = tiny.densify(frame, flow, mask, batch_size=2)
    assert calls == [1]  # the image encoder ran once for 5 hint maps in 3 chunks
    single = torch.cat([tiny.densify(frame, flow[i:i + 1], mask[i:i + 1]) for i in range(5)])
    unshared = tiny.densify(frame.expand(5, -1, -1, -1), flow, mask, batch_size=5)  # one image per map
    assert batched.shape == (5, 2, 128, 128)
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched, unshared, rtol=1e-5, atol=1e-5)


def test_densify_non_square_output_is_resized_and_scaled(tiny):
    frame = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(5))  # H=128, W=192
    flow, mask = _hints(3)
    out = tiny.densify(frame, flow, mask)
    assert out.shape == (3, 2, 128, 192)
    with torch.no_grad():  # by hand: nearest first frame on the grid, CMP, nearest up, x*3, y*2
        image = frame[:, :, [r * 128 // GRID for r in range(GRID)]][..., [c * 192 // GRID for c in range(GRID)]]
        grid_flow = tiny(image.expand(3, -1, -1, -1), flow, mask)
    rows, cols = [r * GRID // 128 for r in range(128)], [c * GRID // 192 for c in range(192)]
    expected = grid_flow[:, :, rows][..., cols] * torch.tensor([3.0, 2.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert tiny.densify(frame, flow, mask, out_size=(64, 320)).shape == (3, 2, 64, 320)


def test_densify_rejects_bad_inputs(tiny):
    flow, mask = _hints(2)
    frame = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="mask"):
        tiny.densify(frame, flow, mask[:, :1])
    with pytest.raises(ValueError, match="first_frame"):
        tiny.densify(torch.rand(3, 3, 64, 64), flow, mask)
    with pytest.raises(ValueError, match="sparse_flow"):
        tiny.densify(frame, flow[:, :1], mask[:, :1])
    with pytest.raises(ValueError, match="batch_size"):
        tiny.densify(frame, flow, mask, batch_size=0)
    training = CMP(**TINY)  # a fresh module is in training mode: batch-statistics BN is refused
    with pytest.raises(RuntimeError, match="eval"):
        training.densify(frame, flow, mask)


# -- loading checkpoints -------------------------------------------------------------------------------------


def _save_checkpoint(path, model, drop=(), extra=None, prefix="module."):
    state = {prefix + k: v.clone() for k, v in model.state_dict().items() if not any(d in k for d in drop)}
    state.update(extra or {})
    torch.save({"step": 42000, "state_dict": state, "optimizer": {}}, path)


@pytest.mark.parametrize("drop", [(), ("num_batches_tracked",)])
def test_from_checkpoint_round_trip(tiny, tmp_path, drop):
    path = tmp_path / "ckpt_iter_42000.pth.tar"
    _save_checkpoint(path, tiny, drop=drop)
    loaded = CMP.from_checkpoint(path, map_location="cpu", **TINY)
    assert not loaded.training
    ref, got = tiny.state_dict(), loaded.state_dict()
    assert list(ref) == list(got)
    for k in ref:
        if drop and k.endswith("num_batches_tracked"):
            assert got[k].item() == 0 and got[k].dtype == torch.long
        else:
            assert torch.equal(ref[k], got[k]), k
    flow, mask = _hints(2)
    frame = torch.rand(1, 3, 64, 128)
    assert torch.equal(loaded.densify(frame, flow, mask), tiny.densify(frame, flow, mask))


def test_from_checkpoint_accepts_a_bare_unprefixed_state_dict(tiny, tmp_path):
    path = tmp_path / "cmp.pth"
    torch.save(tiny.state_dict(), path)
    loaded = CMP.from_checkpoint(path, **TINY)
    assert torch.equal(loaded.flow_decoder.head.bias, tiny.flow_decoder.head.bias)


def test_from_checkpoint_names_missing_unexpected_and_misshapen_keys(tiny, tmp_path):
    path = tmp_path / "bad.pth.tar"
    _save_checkpoint(path, tiny, drop=("flow_decoder.head.bias",))
    with pytest.raises(CMPCheckpointError, match=r"missing \['flow_decoder.head.bias'\]"):
        CMP.from_checkpoint(path, **TINY)
    _save_checkpoint(path, tiny, extra={"module.flow_decoder.extra.weight": torch.zeros(1)})
    with pytest.raises(CMPCheckpointError, match=r"unexpected \['flow_decoder.extra.weight'\]"):
        CMP.from_checkpoint(path, **TINY)
    _save_checkpoint(path, tiny)
    with pytest.raises(CMPCheckpointError, match="image_encoder.conv1.weight: file"):
        CMP.from_checkpoint(path, **{**TINY, "base_width": 4})  # every ResNet shape differs


def test_from_checkpoint_refuses_arbitrary_objects(tiny, tmp_path):
    path = tmp_path / "evil.pth.tar"
    _save_checkpoint(path, tiny)
    obj = torch.load(path, weights_only=True)
    obj["optimizer"] = {"sched": _Arbitrary()}
    torch.save(obj, path)
    with pytest.raises(CMPCheckpointError, match="weights_only"):
        CMP.from_checkpoint(path, **TINY)


def test_from_checkpoint_rejects_non_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello world\n")
    with pytest.raises(CMPCheckpointError, match="not a torch checkpoint"):
        CMP.from_checkpoint(text, **TINY)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CMPCheckpointError, match="not a torch checkpoint"):
        CMP.from_checkpoint(empty, **TINY)
    listy = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listy)
    with pytest.raises(CMPCheckpointError, match="no state dict"):
        CMP.from_checkpoint(listy, **TINY)


class _Arbitrary:
    """Not a tensor or a plain container: weights_only unpickling must refuse it."""
