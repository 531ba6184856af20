"""Device choice: a device this machine lacks is one line naming the ones it has."""

import subprocess
import sys

import pytest
import torch

from nddr.errors import NddrError
from nddr.training import distributed
from nddr.training.distributed import resolve_device


def test_cpu_and_auto_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    ("name", "lacks"),
    [("mps", "no MPS device;"), ("cuda", "no CUDA device;"), ("cuda:3", "no CUDA device 3;")],
)
def test_a_missing_device_names_what_there_is(monkeypatch, name, lacks):
    """A machine with two CUDA devices for ``cuda:3``, none otherwise, and no MPS."""
    two = name == "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: two)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2 if two else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    has = "cpu, cuda, cuda:0, cuda:1" if two else "cpu"
    with pytest.raises(NddrError) as raised:
        resolve_device(name)
    assert str(raised.value) == (
        f"device {name!r} (run.device / --device): this machine has {lacks} it has {has}: "
        "use auto or one of those"
    )
    assert distributed.available_devices() == has.split(", ")


def test_train_on_a_missing_device_is_one_line():
    if torch.backends.mps.is_available():
        pytest.skip("this machine has an MPS device")
    command = [sys.executable, "-m", "nddr", "train", "run.device=mps", "optim.steps=1"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert completed.stderr.startswith("nddr train: error: device 'mps' (run.device / --device)")
    assert "Traceback" not in completed.stderr
