"""Jacobian descent through torchjd: the shared parameters get the aggregate of the tasks'
gradients, each head its own task's, the loss scale and accumulation factor do not change
what the aggregator sees, and Nash-MTL's state carries over."""

import pytest
import torch
from torchjd.aggregation import MGDA, UPGrad

import nddr
from nddr.training.balancing.base import MicroBatchLoss
from nddr.training.balancing.jacobian import JacobianDescent
from nddr.training.balancing.registry import BALANCING, balancing_options

WEIGHTS = {"a": 1.0, "b": 3.0}


def _setup(method: str, variant: str = "multi", seed: int = 0):
    torch.manual_seed(seed)
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, variant, backbone_options={"width": 4})
    entry = BALANCING[method]
    balancer = JacobianDescent(
        WEIGHTS,
        method=method,
        aggregator=entry.aggregator,
        options=balancing_options(method, {}),
        network=network,
    )
    return network, balancer


def _loss(network, balancer) -> MicroBatchLoss:
    torch.manual_seed(1)
    images = torch.randn(2, 3, 32, 32)
    with balancer.recording():
        outputs = network(images)
    tasks = {"a": outputs["a"].square().mean(), "b": (outputs["b"] - 1).abs().mean()}
    return MicroBatchLoss(balancer.combine(tasks), tasks)


def _step(method, variant="multi", scaler=None, accumulate=1):
    network, balancer = _setup(method, variant)
    scaler = scaler or torch.amp.GradScaler("cpu", enabled=False)
    balancer.backward(_loss(network, balancer), scaler, accumulate)
    return network, balancer


@pytest.mark.parametrize(("method", "aggregator"), [("upgrad", UPGrad), ("mgda", MGDA)])
@pytest.mark.parametrize("variant", ["multi", "nddr"])
def test_shared_parameters_get_the_aggregated_task_gradients(method, aggregator, variant):
    network, balancer = _setup(method, variant)
    loss = _loss(network, balancer)
    shared = balancer.split.shared
    rows = []
    for name, value in loss.tasks.items():
        grads = torch.autograd.grad(WEIGHTS[name] * value, shared, retain_graph=True)
        rows.append(torch.cat([grad.reshape(-1) for grad in grads]))
    kwargs = {"pref_vector": torch.ones(2)} if method == "upgrad" else {}
    expected = aggregator(**kwargs)(torch.stack(rows))
    own = {
        name: torch.autograd.grad(
            WEIGHTS[name] * value, balancer.split.tasks[name], retain_graph=True
        )
        for name, value in loss.tasks.items()
    }
    balancer.backward(loss, torch.amp.GradScaler("cpu", enabled=False), 1)
    actual = torch.cat([p.grad.reshape(-1) for p in shared])
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6)
    for name, grads in own.items():
        for param, grad in zip(balancer.split.tasks[name], grads):
            torch.testing.assert_close(param.grad, grad)
    assert set(balancer.logged()["weights"]) == {"a", "b"}
    assert not any(hasattr(p, "jac") for p in shared)


@pytest.mark.parametrize("method", ["nash_mtl", "mgda"])
def test_the_loss_scale_and_accumulation_are_divided_out_of_the_aggregation(method):
    plain, _ = _step(method)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaled, _ = _step(method, scaler=scaler, accumulate=4)
    for expected, actual in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(actual.grad, expected.grad * 256, rtol=1e-4, atol=1e-6)


def test_nash_mtl_state_carries_over():
    _, balancer = _step("nash_mtl")
    state = balancer.state_dict()
    assert state["nash"]["step"] == 1.0
    _, fresh = _setup("nash_mtl")
    fresh.load_state_dict(state)
    assert torch.equal(
        torch.as_tensor(fresh.aggregator.weighting.prvs_alpha), state["nash"]["prvs_alpha"]
    )
    matrix = torch.randn(2, 10, dtype=torch.float64)
    torch.testing.assert_close(fresh.aggregator(matrix), balancer.aggregator(matrix))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_aggregation_runs_under_autocast(dtype):
    """The fp32 step's direction, from the reduced-precision features and a 256x loss scale."""
    _, plain = _step("upgrad", "nddr")
    network, balancer = _setup("upgrad", "nddr")
    with torch.autocast("cpu", dtype=dtype):
        loss = _loss(network, balancer)
    assert {feature.dtype for feature in balancer.features} == {dtype}
    balancer.backward(loss, torch.amp.GradScaler("cpu", init_scale=256.0), 1)
    assert all(torch.isfinite(p.grad).all() for p in network.parameters())
    shared = torch.cat([p.grad.reshape(-1) for p in balancer.split.shared]) / 256
    reference = torch.cat([p.grad.reshape(-1) for p in plain.split.shared])
    assert torch.nn.functional.cosine_similarity(shared, reference, 0) > 0.9
