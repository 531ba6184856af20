"""The fusion registry: a fusion registered from outside the package is a variant everywhere."""

import subprocess
import sys
from collections.abc import Sequence

import pytest
import torch
from torch import Tensor, nn

import nddr
from nddr.benchmark import plan_workloads
from nddr.errors import NddrError
from nddr.models.analysis import format_shares, fusion_shares
from nddr.models.fusion import (
    FUSIONS,
    Fusion,
    GroupedNDDR,
    LayerSelection,
    LowRankNDDR,
    Shares,
    fusion_entry,
    register_fusion,
    unregister_fusion,
)
from nddr.models.fusion.registry import auxiliary_loss_name, bench_variants, entry_of, variant_error
from nddr.training import load_model, train
from nddr.training.config import build_config

TINY = {
    "name": "blend-run",
    "data": {
        "name": "scenes",
        "tasks": ["segmentation", "normals"],
        "options": {"size": 32, "num_images": 8},
        "crop_size": 32,
        "batch_size": 4,
        "eval_batch_size": 8,
    },
    "model": {"backbone": "tiny", "variant": "blend", "backbone_options": {"width": 4}},
    "optim": {"steps": 2, "lr": 0.01},
    "run": {"log_every": 1, "checkpoint_every": 2, "progress": False, "inspect_every": 1},
}


class Blend(Fusion):
    """A toy fusion: each task keeps 1 - w of its features and takes w of the tasks' mean, with
    an extra loss ``penalty * w^2``."""

    def __init__(
        self, channels: int, num_tasks: int, weight: float = 0.5, penalty: float = 0.01
    ) -> None:
        super().__init__(channels, num_tasks)
        self.weight = nn.Parameter(torch.tensor(float(weight)))
        self.penalty = penalty
        self.loss: Tensor | None = None

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        self.check_features(features)
        mean = torch.stack(list(features)).mean(0)
        self.loss = self.penalty * self.weight.pow(2) if torch.is_grad_enabled() else None
        return [(1 - self.weight) * feature + self.weight * mean for feature in features]

    def auxiliary_loss(self) -> Tensor | None:
        return self.loss

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        w = float(self.weight)
        k = self.num_tasks
        return torch.full((k, k), w / k, dtype=torch.float64) + (1 - w) * torch.eye(k)


@pytest.fixture
def blend():
    entry = register_fusion(
        "blend",
        Blend,
        "K columns blended towards their mean after every stage (a toy)",
        head_input=LayerSelection,
        auxiliary_loss="the blend penalty",
        shares=Shares("the blend weights", "b_kj"),
    )
    yield entry
    unregister_fusion("blend")


def test_a_registered_fusion_is_a_variant_everywhere(blend):
    assert nddr.VARIANTS["blend"].startswith("K columns blended")
    assert list(nddr.VARIANTS)[-1] == "blend" and FUSIONS["blend"] is Blend
    assert fusion_entry("blend") is blend and blend.title == "Blend"
    assert variant_error("blend") is None
    assert bench_variants()["blend_shortcut"] == ("blend", True)
    assert [w.label for w in plan_workloads(["blend", "blend_shortcut"], 2)] == [
        "blend",
        "blend_shortcut",
    ]
    with pytest.raises(NddrError, match="cannot register fusion 'blend'"):
        register_fusion("blend", Blend, "again")
    with pytest.raises(NddrError, match="Blend option weight is a finite number"):
        build_config(TINY, ["model.fusion_options={weight: yes}"])


def test_the_builder_reads_the_entry(blend):
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "blend", fusion_options={"weight": 0.2})
    assert all(isinstance(fusion, Blend) for fusion in network.fusions)
    assert network.fusions[0].weight.item() == pytest.approx(0.2)
    assert isinstance(network.head_input("a"), LayerSelection)
    assert entry_of(network.fusions[0]) is blend and entry_of(nn.ReLU()) is None
    shortcut = nddr.build_network("tiny", {"a": 2, "b": 3}, "blend", shortcut=True)
    assert isinstance(shortcut.head_input("a"), nddr.Shortcut)
    network(torch.randn(2, 3, 32, 32))
    expected = sum(fusion.penalty * fusion.weight.pow(2) for fusion in network.fusions)
    assert torch.allclose(network.auxiliary_loss(), expected)
    assert auxiliary_loss_name(network.fusions) == "the blend penalty"
    assert auxiliary_loss_name([nn.ReLU()]) == "the fusion layers' extra loss"
    shares = fusion_shares(network)
    assert [layer.name for layer in shares][:2] == ["Blend 1", "Blend 2"]
    assert shares[0].shares[0] == pytest.approx((0.9, 0.1))
    assert "(the blend weights)" in format_shares(shares)
    with pytest.raises(
        NddrError,
        match="folds the batch norm of NDDR / Grouped NDDR / Low-rank NDDR layers, and Blend",
    ):
        fusion_shares(network, fold_bn=True)


def test_a_registered_fusion_trains_through_a_config(blend, tmp_path):
    summary = train(build_config(TINY, [f"run.out={tmp_path}"]))
    assert summary["step"] == 2
    network, _, experiment = load_model(summary["run_dir"])
    assert experiment["model"]["variant"] == "blend"
    assert all(isinstance(fusion, Blend) for fusion in network.fusions)
    # The blend weights moved: they were trained (their penalty included) at the fusion rate.
    assert any(fusion.weight.item() != 0.5 for fusion in network.fusions)


def test_an_unknown_variant_lists_the_registered_ones():
    with pytest.raises(NddrError, match="'nddr', 'nddr_grouped' or 'nddr_lowrank'\\)"):
        build_config({}, ["model.variant=blend"])
    with pytest.raises(NddrError, match="cannot register fusion 'nddr'"):
        register_fusion("nddr", Blend, "a second nddr")
    with pytest.raises(NddrError, match="no fusion 'blend' is registered"):
        unregister_fusion("blend")


def test_a_reference_that_is_no_fusion_is_refused():
    entry = register_fusion("not_a_fusion", "torch.nn:ReLU", "a ReLU")
    try:
        with pytest.raises(NddrError, match=r"'torch\.nn:ReLU' is not a Fusion subclass"):
            nddr.build_network("tiny", {"a": 2, "b": 3}, "not_a_fusion")
        assert entry.title == "ReLU"
    finally:
        unregister_fusion("not_a_fusion")


def test_a_reference_that_names_nothing_is_one_line():
    register_fusion("missing", "nddr.models.fusion.nowhere:Missing", "a fusion that is not there")
    try:
        with pytest.raises(NddrError, match="nowhere:Missing' names nothing"):
            nddr.build_network("tiny", {"a": 2, "b": 3}, "missing")
    finally:
        unregister_fusion("missing")


def test_the_registry_is_read_without_torch():
    code = (
        "import sys; from nddr.models.fusion import registry; "
        "assert registry.variant_error('nddr') is None and 'torch' not in sys.modules; "
        "print(registry.variant_choices())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "single, multi, cross_stitch, sluice, nddr, nddr_grouped or nddr_lowrank"
    )


def test_the_built_in_kinds_keep_their_parts():
    assert list(nddr.VARIANTS) == [
        "single",
        "multi",
        "cross_stitch",
        "sluice",
        "nddr",
        "nddr_grouped",
        "nddr_lowrank",
    ]
    assert dict(FUSIONS) == {
        "cross_stitch": nddr.CrossStitch,
        "sluice": nddr.Sluice,
        "nddr": nddr.NDDR,
        "nddr_grouped": GroupedNDDR,
        "nddr_lowrank": LowRankNDDR,
    }
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "sluice")
    assert auxiliary_loss_name(network.fusions) == "the sluice penalty"
    assert [fusion_entry(name).shares.fold_bn for name in FUSIONS] == [
        False,
        False,
        True,
        True,
        True,
    ]
    assert bench_variants()["nddr_shortcut"] == ("nddr", True)
