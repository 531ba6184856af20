import atexit
import copy
import os
import shutil
import tempfile

import pytest
import torch

import nddr
from nddr.models.backbones import StagedBackbone

# Built-in datasets cache into a fresh folder per test process, never the user's cache.
os.environ["NDDR_CACHE"] = tempfile.mkdtemp(prefix="nddr-test-cache-")
atexit.register(shutil.rmtree, os.environ["NDDR_CACHE"], ignore_errors=True)

# One intra-op thread per test process: the suite runs as parallel processes (pytest -n).
torch.set_num_threads(int(os.environ.get("NDDR_TEST_THREADS", "1")))


def custom_backbone() -> StagedBackbone:
    """A user's own stages, wrapped as the README shows."""
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())

    return StagedBackbone.from_modules([block(3, 8, 2), block(8, 16, 2), block(16, 16, 2)])


BACKBONE_NAMES = [
    "tiny",
    "vgg16_lfov",
    "resnet50",
    "resnet101",
    "alexnet",
    "timm:resnet18",
    "custom",
]

_cache: dict[str, StagedBackbone] = {}


def make_backbone(name: str) -> StagedBackbone:
    """A fresh copy of a backbone (built once per process: ResNet-101 takes a while)."""
    if name not in _cache:
        torch.manual_seed(0)
        _cache[name] = custom_backbone() if name == "custom" else nddr.build_backbone(name)
    return copy.deepcopy(_cache[name])


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def randomise_batch_norm(network: torch.nn.Module) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
