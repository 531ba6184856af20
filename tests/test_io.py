import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nddr import NddrError
from nddr.io import (
    file_sha256,
    is_safetensors,
    load_state_dict,
    read_metadata,
    save_state_dict,
)


def test_round_trip_with_metadata(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "n": torch.tensor(3)}
    path = save_state_dict(
        state, tmp_path / "sub" / "w.safetensors", metadata={"config": {"a": [1, 2]}}
    )
    loaded = load_state_dict(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["n"].item() == 3
    assert read_metadata(path) == {"config": {"a": [1, 2]}}
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_state_dict({"w": torch.ones(2)}, tmp_path / "w.safetensors")

    def broken(*args, **kwargs):
        Path(args[1]).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("nddr.io.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_state_dict({"w": torch.zeros(2)}, path)
    assert torch.equal(load_state_dict(path)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


class _WritesAFile:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickled_code_is_refused_and_never_run(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        torch.save(
            {"w": torch.ones(1), "payload": _WritesAFile(str(target))}, handle, pickle_module=pickle
        )
    with pytest.raises(NddrError, match="refusing"):
        load_state_dict(path)
    assert not target.exists()


def test_unwraps_state_dict_and_model_keys(tmp_path):
    for key in ("state_dict", "model"):
        path = tmp_path / f"{key}.pth"
        torch.save({key: {"w": torch.ones(1)}, "epoch": 3}, path)
        assert list(load_state_dict(path)) == ["w"]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.pth", None, "not found"),
        ("corrupt.safetensors", b"\x00" * 5, "not a readable safetensors"),
        ("corrupt.pth", b"garbage", "not a readable torch file"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NddrError, match=message):
        load_state_dict(path)


def test_truncated_safetensors_is_detected(tmp_path):
    path = save_state_dict({"w": torch.ones(1000)}, tmp_path / "w.safetensors")
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(NddrError, match=str(path.name)):
        load_state_dict(path)


def test_non_tensor_content_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(NddrError, match="does not hold a state dict"):
        load_state_dict(path)


def test_file_sha256_reads_in_chunks(tmp_path):
    path = tmp_path / "data.bin"
    content = bytes(range(256)) * 41
    path.write_bytes(content)
    expected = hashlib.sha256(content).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(path, chunk_size=1000) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_format_is_told_by_content_not_suffix(tmp_path):
    state = {"w": torch.arange(4.0)}
    written = save_state_dict(state, tmp_path / "w.pt", metadata={"nddr_x": [1]})
    assert is_safetensors(written) and torch.equal(load_state_dict(written)["w"], state["w"])
    assert read_metadata(written) == {"nddr_x": [1]}
    pickled = tmp_path / "w.bin"
    torch.save(state, pickled)
    assert not is_safetensors(pickled) and torch.equal(load_state_dict(pickled)["w"], state["w"])
    with pytest.raises(NddrError, match="a torch file, which carries no nddr metadata"):
        read_metadata(pickled)


def test_flipped_tensor_byte_fails_the_checksum(tmp_path):
    path = save_state_dict({"w": torch.ones(64)}, tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(NddrError, match=r"w\.safetensors is corrupt: its tensors do not match"):
        load_state_dict(path)


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path):
    weights = torch.ones(3)
    weights[1] = float("nan")
    for path in (tmp_path / "w.pth", tmp_path / "w.safetensors"):
        if path.suffix == ".pth":
            torch.save({"ok": torch.ones(1), "layer.weight": weights}, path)
        else:
            save_file({"ok": torch.ones(1), "layer.weight": weights}, str(path))
        with pytest.raises(NddrError, match=r"tensor 'layer.weight' holds NaN or Inf values"):
            load_state_dict(path)


def test_metadata_of_other_tools_stays_text_and_edited_nddr_keys_fail(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(1)}, str(path), metadata={"format": "pt", "nddr_x": "{broken"})
    with pytest.raises(NddrError, match="metadata 'nddr_x' is not valid JSON"):
        read_metadata(path)
    save_file({"w": torch.ones(1)}, str(path), metadata={"format": "pt"})
    assert read_metadata(path) == {"format": "pt"}


def test_a_folder_is_named_as_one(tmp_path):
    with pytest.raises(NddrError, match=r"is a folder: pass the path of a .safetensors or .pth"):
        load_state_dict(tmp_path)
