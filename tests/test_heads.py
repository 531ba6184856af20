import pytest
import torch

from nddr import NddrError
from nddr.heads import ASPP, Classifier, DeepLabLargeFOV, build_head


def test_large_fov_head_layout():
    head = DeepLabLargeFOV(512, 40)
    assert head.fc6.dilation == (12, 12) and head.fc6.kernel_size == (3, 3)
    assert head.fc6.out_channels == 1024 and head.fc7.out_channels == 1024
    assert head.fc8.out_channels == 40 and head.final_layers() == [head.fc8]
    assert head(torch.rand(2, 512, 5, 5)).shape == (2, 40, 5, 5)


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
