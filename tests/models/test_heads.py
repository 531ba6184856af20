import pytest
import torch

from nddr import NddrError
from nddr.models.heads import ASPP, Classifier, DeepLabLargeFOV, build_head
from tests.helpers import randomise_batch_norm


def test_large_fov_head_layout():
    head = DeepLabLargeFOV(512, 40)
    assert head.fc6.dilation == (12, 12) and head.fc6.kernel_size == (3, 3)
    assert head.fc6.out_channels == 1024 and head.fc7.out_channels == 1024
    assert head.bn6.num_features == 1024 and head.bn7.num_features == 1024
    assert head.fc6.bias is not None and head.fc7.bias is not None
    assert head.fc8.out_channels == 40 and head.final_layers() == [head.fc8]
    assert head(torch.rand(2, 512, 5, 5)).shape == (2, 40, 5, 5)


def test_large_fov_head_is_conv_bn_relu_on_fc6_and_fc7():
    """The released code's arg scope: batch norm and ReLU after every conv but fc8."""
    head = DeepLabLargeFOV(8, 3, width=16, dilation=2)
    randomise_batch_norm(head)
    head.eval()
    x = torch.randn(2, 8, 6, 6)
    hidden = torch.relu(head.bn6(head.fc6(x)))
    expected = head.fc8(torch.relu(head.bn7(head.fc7(hidden))))
    assert torch.allclose(head(x), expected, atol=1e-6)


def test_large_fov_dropout_drops_single_activations_not_channels():
    """slim.dropout (keep 0.5) zeroes activations one by one and scales the kept ones by 2."""
    head = DeepLabLargeFOV(8, 3, width=64, dilation=2)
    seen = []
    head.fc7.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].clone()))
    x = torch.randn(4, 8, 6, 6)
    head.train()(x)
    kept = torch.relu(head.bn6(head.fc6(x)))
    dropped = seen[0]
    assert torch.all((dropped == 0) | torch.isclose(dropped, 2 * kept))
    active = kept > 0
    zeroed = (dropped == 0) & active
    assert 0.4 < zeroed.sum() / active.sum() < 0.6
    # Channel dropout would zero all of a channel's activations or none of them.
    per_channel = zeroed.sum((2, 3)) / active.sum((2, 3)).clamp(min=1)
    assert ((per_channel > 0.1) & (per_channel < 0.9)).float().mean() > 0.8


def test_aspp_sums_four_dilated_branches():
    head = ASPP(16, 3)
    assert [b.dilation[0] for b in head.branches] == [6, 12, 18, 24]
    x = torch.rand(2, 16, 6, 6)
    assert torch.allclose(head(x), sum(branch(x) for branch in head.branches), atol=1e-6)
    assert head.final_layers() == list(head.branches)


def test_classifier_is_global_pool_and_linear():
    head = Classifier(8, 100)
    x = torch.rand(2, 8, 3, 3)
    assert torch.allclose(head(x), head.fc(x.mean((2, 3))), atol=1e-6)


def test_unknown_head_kind():
    with pytest.raises(NddrError, match="did you mean 'aspp'"):
        build_head("asp", 4, 4)
