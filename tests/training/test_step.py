"""The training step's parts: the loss the loop and ``nddr bench`` minimise, and the update."""

import pytest
import torch

import nddr
from nddr.data.base import TargetSpec
from nddr.tasks import build_task, total_loss
from nddr.training.config import RunConfig
from nddr.training.step import AMP_DTYPES, compute_loss, optimizer_step


def _setup(variant: str):
    torch.manual_seed(0)
    tasks = [
        build_task("seg", TargetSpec("segmentation", 3)),
        build_task("normals", TargetSpec("normals"), weight=5.0),
    ]
    network = nddr.build_network("tiny", [task.head_spec() for task in tasks], variant)
    normals = torch.nn.functional.normalize(torch.randn(2, 3, 16, 16), dim=1)
    batch = {
        "image": torch.randn(2, 3, 16, 16),
        "seg": torch.randint(0, 3, (2, 16, 16)),
        "normals": normals,
    }
    return network, tasks, batch


def test_loss_is_the_weighted_task_losses():
    network, tasks, batch = _setup("nddr")
    network.eval()
    result = compute_loss(network, network, tasks, batch)
    loss, per_task = result.total, result.tasks
    expected, expected_per_task = total_loss(tasks, network(batch["image"]), batch)
    torch.testing.assert_close(loss, expected)
    assert per_task.keys() == {"seg", "normals"}
    torch.testing.assert_close(loss, per_task["seg"] + 5.0 * per_task["normals"])
    for name, value in expected_per_task.items():
        torch.testing.assert_close(per_task[name], value)


def test_sluice_loss_adds_its_subspace_penalty():
    network, tasks, batch = _setup("sluice")
    result = compute_loss(network, network, tasks, batch)
    loss, per_task, penalty = result.total, result.tasks, result.auxiliary
    assert penalty is not None and penalty.item() > 0
    torch.testing.assert_close(penalty, network.auxiliary_loss())
    torch.testing.assert_close(loss, per_task["seg"] + 5.0 * per_task["normals"] + penalty)


def test_channels_last_gives_the_same_loss():
    network, tasks, batch = _setup("nddr")
    network.eval()
    plain = compute_loss(network, network, tasks, batch).total
    last = compute_loss(network, network, tasks, batch, channels_last=True).total
    torch.testing.assert_close(plain, last, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_runs_the_forward_in_bf16():
    network, tasks, batch = _setup("nddr")
    seen = []
    handle = network.heads["seg"].register_forward_hook(
        lambda module, args, output: seen.append(output.dtype)
    )
    compute_loss(network, network, tasks, batch, amp_dtype=torch.bfloat16)
    handle.remove()
    assert seen == [torch.bfloat16]


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_optimizer_step_clips_updates_and_clears_gradients(clip):
    network, tasks, batch = _setup("nddr")
    optimizer = torch.optim.SGD(network.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    compute_loss(network, network, tasks, batch).total.backward()
    before = [parameter.detach().clone() for parameter in network.parameters()]
    gradient_norm = torch.nn.utils.get_total_norm(
        [parameter.grad for parameter in network.parameters() if parameter.grad is not None]
    )
    optimizer_step(optimizer, scaler, network, grad_clip=clip)
    moved = torch.cat(
        [(after.detach() - old).flatten() for after, old in zip(network.parameters(), before)]
    ).norm()
    expected = gradient_norm if clip is None else min(clip, gradient_norm)
    torch.testing.assert_close(moved, torch.as_tensor(expected), rtol=1e-3, atol=1e-7)
    assert all(parameter.grad is None for parameter in network.parameters())


def test_every_amp_choice_of_the_config_has_a_dtype():
    choices = RunConfig.model_fields["amp"].annotation.__args__
    assert set(AMP_DTYPES) == set(choices)
