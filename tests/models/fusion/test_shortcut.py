import torch

from nddr import Shortcut


def test_shortcut_concatenates_resized_stage_outputs():
    shortcut = Shortcut([64, 128, 256, 512, 512])
    assert shortcut.conv.in_channels == 1472 and shortcut.conv.out_channels == 512
    outputs = [
        torch.rand(2, c, s, s) for c, s in [(64, 16), (128, 8), (256, 4), (512, 4), (512, 4)]
    ]
    assert shortcut(outputs).shape == (2, 512, 4, 4)
