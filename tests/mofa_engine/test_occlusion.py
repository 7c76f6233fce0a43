"""ForegroundMatting: key layout at full size, hourglass wiring, and the blend formula."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from mofa_engine.models.occlusion import ForegroundMatting


@pytest.fixture(scope="module")
def ldmk_manifest(fixtures) -> dict:
    return json.loads((fixtures / "manifests" / "manifest_ldmk_controlnet.json").read_text())


@pytest.mark.parametrize(("scale", "channels"), [("8", 320), ("16", 320), ("32", 640), ("64", 1280)])
def test_full_size_keys_and_shapes_match_manifest(ldmk_manifest, scale, channels):
    with torch.device("meta"):
        module = ForegroundMatting(channels)
    prefix = f"occlusions.{scale}."
    expected = {k[len(prefix) :]: v for k, v in ldmk_manifest.items() if k.startswith(prefix)}
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == expected


def _tiny(channels: int = 6) -> ForegroundMatting:
    torch.manual_seed(0)
    return ForegroundMatting(channels, block_expansion=4).eval()


def test_hourglass_wiring_by_hand():
    module = _tiny()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 14, 5, 4, generator=generator)
    enc = module.hourglass.encoder.down_blocks
    dec = module.hourglass.decoder.up_blocks
    e1 = F.relu(enc[0].conv(x))
    e2 = F.relu(enc[1].conv(e1))
    e3 = F.relu(enc[2].conv(e2))
    d0 = F.relu(dec[0].conv(e3))
    d1 = F.relu(dec[1].conv(torch.cat([e2, d0], 1)))  # [encoder skip, decoder output]
    d2 = F.relu(dec[2].conv(torch.cat([e1, d1], 1)))
    with torch.no_grad():
        torch.testing.assert_close(module.hourglass(x), d2)
    assert d2.shape == (2, 4, 5, 4)  # resolution preserved


def test_blend_formula_and_input_order():
    module = _tiny()
    generator = torch.Generator().manual_seed(1)
    reference = torch.randn(2, 6, 4, 4, generator=generator)
    flow = torch.randn(2, 2, 4, 4, generator=generator)
    warped = torch.randn(2, 6, 4, 4, generator=generator)
    with torch.no_grad():
        out, mask = module(reference, flow, warped)
        features = module.hourglass(torch.cat([reference, flow, warped], 1))
        m = torch.sigmoid(module.matting_mask(features))
        fill = module.matting(features)
    torch.testing.assert_close(mask, m)
    torch.testing.assert_close(out, warped * m + fill * (1 - m))
    assert mask.shape == (2, 1, 4, 4)
    assert ((mask > 0) & (mask < 1)).all()


def test_mask_saturation_selects_warped_or_fill():
    module = _tiny()
    generator = torch.Generator().manual_seed(2)
    reference, warped = torch.randn(2, 1, 6, 3, 3, generator=generator)
    flow = torch.zeros(1, 2, 3, 3)
    with torch.no_grad():
        module.matting_mask.weight.zero_()
        module.matting_mask.bias.fill_(50.0)
        keep, _ = module(reference, flow, warped)
        module.matting_mask.bias.fill_(-50.0)
        fill, _ = module(reference, flow, warped)
        expected_fill = module.matting(module.hourglass(torch.cat([reference, flow, warped], 1)))
    torch.testing.assert_close(keep, warped)
    torch.testing.assert_close(fill, expected_fill)
