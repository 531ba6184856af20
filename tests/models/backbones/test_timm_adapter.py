"""timm backbones: EfficientNet / MobileNet stages, refusals, and counting on meta tensors."""

import pytest
import torch

import nddr
from nddr import NddrError
from nddr.models import VARIANTS

timm = pytest.importorskip("timm")


BLOCK_MODELS = ["efficientnet_b0", "mobilenetv3_small_100"]


TASKS = {"seg": 3, "depth": 1}


@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_block_model_stages_give_timm_features(name):
    torch.manual_seed(0)
    extractor = timm.create_model(name, features_only=True).eval()
    torch.manual_seed(0)
    backbone = nddr.build_backbone(f"timm:{name}").eval()
    assert backbone.channels == tuple(extractor.feature_info.channels())
    assert backbone.strides == (2, 4, 8, 16, 32)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(backbone(image), extractor(image), strict=True):
            torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", BLOCK_MODELS)
def test_block_model_trains_in_every_variant(name, variant):
    network = nddr.build_network(f"timm:{name}", TASKS, variant).train()
    outputs = network(torch.rand(2, 3, 32, 32))
    assert {key: out.shape[:2] for key, out in outputs.items()} == {"seg": (2, 3), "depth": (2, 1)}
    sum(out.square().mean() for out in outputs.values()).backward()
    assert all(p.grad is not None for p in network.columns[-1].parameters())


def test_model_without_a_module_sequence_is_refused_without_naming_its_family():
    with pytest.raises(NddrError) as caught:
        nddr.build_backbone("timm:vit_tiny_patch16_224")
    message = str(caught.value)
    assert "FeatureGetterNet, not a module sequence" in message
    assert "vit*" not in message and "efficientnet*" in message and "\n" not in message


def test_taps_inside_blocks_are_refused():
    with pytest.raises(NddrError, match="leave feature_location at its default"):
        nddr.build_backbone("timm:efficientnet_b0", feature_location="expansion")


@pytest.mark.parametrize("name", ["regnetx_002", "efficientnet_b0"])
def test_meta_build_counts_what_a_cpu_build_has(name):
    cpu = nddr.build_network(f"timm:{name}", TASKS, "nddr")
    with torch.device("meta"):
        meta = nddr.build_network(f"timm:{name}", TASKS, "nddr")
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert meta.parameter_summary() == cpu.parameter_summary()
