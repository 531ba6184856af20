import torch

from nddr import CrossStitch
from tests.models.fusion.test_nddr import features


def test_cross_stitch_init_and_mix():
    stitch = CrossStitch(4, 3)
    assert stitch.weight.shape == (3, 3, 4)
    assert torch.allclose(stitch.weight[0, 0], torch.full((4,), 0.9))
    assert torch.allclose(stitch.weight[0, 2], torch.full((4,), 0.05))
    inputs = features(3, channels=4)
    out = stitch(inputs)
    assert torch.allclose(out[1], 0.05 * inputs[0] + 0.9 * inputs[1] + 0.05 * inputs[2], atol=1e-6)
