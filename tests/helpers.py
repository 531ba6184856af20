"""Helpers shared by the test modules: small backbones, a tiny training config, batch-norm noise."""

import copy

import torch

import nddr
from nddr.models.backbones import StagedBackbone
from nddr.training.config import build_config


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


def randomise_batch_norm(network: torch.nn.Module) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)


TINY = {
    "name": "tiny-run",
    "data": {
        "name": "scenes",
        "tasks": ["segmentation", "normals"],
        "options": {"size": 32, "num_images": 24},
        "crop_size": 32,
        "batch_size": 8,
        "eval_batch_size": 8,
        "workers": 0,
    },
    "model": {"backbone": "tiny", "variant": "nddr", "backbone_options": {"width": 4}},
    "optim": {"steps": 6, "lr": 0.01, "loss_weights": {"normals": 20.0}},
    "run": {"log_every": 1, "checkpoint_every": 3, "progress": False, "keep_checkpoints": 5},
}


def tiny_config(tmp_path, *overrides):
    return build_config(TINY, [f"run.out={tmp_path}", *overrides])
