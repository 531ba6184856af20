"""Checkpoints: checksum manifest, verification, resume fallback, pruning, safe loading."""

import hashlib
import json
import os
import pathlib
import pickle
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import nddr
import nddr.training
from nddr import NddrError, build_network, save_network
from nddr.data.base import TargetSpec
from nddr.io import load_state_dict
from nddr.tasks import build_task
from nddr.training import checkpoint as checkpoints
from nddr.training.checkpoint import (
    latest_resumable,
    list_checkpoints,
    load_trainer_state,
    save_checkpoint,
    verify_checkpoint,
)
from nddr.training.load import find_model_file, load_model, load_run
from nddr.training.run_folder import MANIFEST_FILE, MODEL_FILE, TRAINER_FILE


@pytest.fixture
def save(tmp_path):
    """Save a tiny network's checkpoint of a step into the run folder ``tmp_path / "run"``."""
    torch.manual_seed(0)
    network = build_network("tiny", {"seg": 3}, "nddr", backbone_options={"width": 4})
    tasks = [build_task("seg", TargetSpec("segmentation", 3))]

    def save_step(step: int, keep: int = 5) -> pathlib.Path:
        state = {"step": step, "micro_seen": 2 * step, "momentum": torch.arange(1000.0)}
        return save_checkpoint(tmp_path / "run", step, network, tasks, {"seed": 1}, state, keep)

    return save_step


def flip_middle_byte(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_round_trip_writes_a_manifest_that_verifies(save, tmp_path):
    folder = save(10)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert set(manifest["files"]) == {MODEL_FILE, TRAINER_FILE}
    for name, entry in manifest["files"].items():
        content = (folder / name).read_bytes()
        assert entry == {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert sorted(path.name for path in folder.iterdir()) == [
        MANIFEST_FILE,
        MODEL_FILE,
        TRAINER_FILE,
    ]
    assert [path.name for path in (tmp_path / "run" / "checkpoints").iterdir()] == [folder.name]
    verify_checkpoint(folder)
    assert latest_resumable(tmp_path / "run") == (folder, [])
    assert load_trainer_state(folder)["step"] == 10
    _, tasks, experiment = load_model(tmp_path / "run")
    assert [task.name for task in tasks] == ["seg"] and experiment == {"seed": 1}


def test_truncated_model_is_detected_and_resume_falls_back(save, tmp_path):
    older, newer = save(10), save(20)
    model_file = newer / MODEL_FILE
    os.truncate(model_file, model_file.stat().st_size - 100)
    with pytest.raises(NddrError, match=rf"step_00000020.* is truncated \({MODEL_FILE} has"):
        verify_checkpoint(newer)
    resumed, warnings = latest_resumable(tmp_path / "run")
    assert resumed == older
    assert len(warnings) == 1
    assert "step_00000020" in warnings[0] and "truncated" in warnings[0]
    assert warnings[0].endswith(f"; falling back to {str(older)!r}")


def test_flipped_byte_in_model_is_a_checksum_mismatch(save, tmp_path):
    older, newer = save(10), save(20)
    flip_middle_byte(newer / MODEL_FILE)
    with pytest.raises(NddrError, match="do not match the checksum saved with them"):
        load_state_dict(newer / MODEL_FILE)  # The tensors' own checksum tells too.
    message = rf"step_00000020.* is corrupt \(checksum mismatch in {MODEL_FILE}\)"
    with pytest.raises(NddrError, match=message):
        verify_checkpoint(newer)
    with pytest.raises(NddrError, match=message):
        load_model(newer)
    resumed, warnings = latest_resumable(tmp_path / "run")
    assert resumed == older
    assert warnings == [
        f"checkpoint {str(newer)!r} is corrupt (checksum mismatch in {MODEL_FILE}); "
        f"falling back to {str(older)!r}"
    ]


def test_flipped_byte_in_trainer_state_is_a_checksum_mismatch(save, tmp_path):
    older, newer = save(10), save(20)
    flip_middle_byte(newer / TRAINER_FILE)
    torch.load(newer / TRAINER_FILE, weights_only=True)  # Still loads: only the checksum tells.
    message = rf"step_00000020.* is corrupt \(checksum mismatch in {TRAINER_FILE}\)"
    with pytest.raises(NddrError, match=message):
        verify_checkpoint(newer)
    with pytest.raises(NddrError, match=message):
        load_trainer_state(newer)
    find_model_file(newer)  # The weights are intact: eval and predict still read them.
    resumed, warnings = latest_resumable(tmp_path / "run")
    assert resumed == older and len(warnings) == 1 and TRAINER_FILE in warnings[0]


def test_no_intact_checkpoint_left_is_an_error(save, tmp_path):
    for folder in (save(10), save(20)):
        flip_middle_byte(folder / MODEL_FILE)
    with pytest.raises(
        NddrError, match=r"has no intact checkpoint left .* start a new run"
    ) as info:
        latest_resumable(tmp_path / "run")
    assert str(tmp_path / "run") in str(info.value) and "\n" not in str(info.value)


def test_a_run_without_checkpoints_has_none_to_resume(tmp_path):
    with pytest.raises(NddrError, match="has no checkpoint to resume"):
        latest_resumable(tmp_path / "run")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda folder: (folder / TRAINER_FILE).unlink(),
            f"is incomplete \\({TRAINER_FILE} is missing",
        ),
        (lambda folder: (folder / MANIFEST_FILE).write_text("{not json"), "unreadable manifest"),
        (
            lambda folder: (folder / MANIFEST_FILE).write_text('{"files": {}}'),
            "unreadable manifest",
        ),
    ],
)
def test_missing_file_or_bad_manifest_fails_verification(save, damage, message):
    folder = save(10)
    damage(folder)
    with pytest.raises(NddrError, match=message):
        verify_checkpoint(folder)


def test_old_checkpoint_without_manifest_loads_for_eval_but_cannot_resume(save, tmp_path):
    folder = save(10)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(NddrError, match=f"has no {MANIFEST_FILE} .* cannot be verified"):
        verify_checkpoint(folder)
    with pytest.raises(NddrError, match=r"no intact checkpoint left .* cannot be verified"):
        latest_resumable(tmp_path / "run")
    assert find_model_file(folder) == folder / MODEL_FILE
    load_model(tmp_path / "run")
    copy = tmp_path / "exported.safetensors"
    copy.write_bytes((folder / MODEL_FILE).read_bytes())
    assert find_model_file(copy) == copy


def test_pruning_keeps_the_new_checkpoint_over_a_later_damaged_one(save, tmp_path):
    """A run resumed from step 10 (step 20 corrupt) saves step 15 with keep=1: step 10 goes only
    now, step 15 stays, and step 20 waits to be replaced."""
    save(10)
    damaged = save(20)
    flip_middle_byte(damaged / MODEL_FILE)
    saved = save(15, keep=1)
    assert [path.name for path in list_checkpoints(tmp_path / "run")] == [
        "step_00000015",
        "step_00000020",
    ]
    assert latest_resumable(tmp_path / "run")[0] == saved


def test_a_failed_save_keeps_the_older_checkpoints(save, tmp_path, monkeypatch):
    older = save(10, keep=1)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save(20, keep=1)
    assert list_checkpoints(tmp_path / "run") == [older]
    assert latest_resumable(tmp_path / "run") == (older, [])


class TouchesAFile:
    """Unpickling this creates ``target``: the stand-in for code a malicious file would run."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


def write_malicious(path: pathlib.Path, target: pathlib.Path) -> None:
    """A torch file whose payload is live: a plain (unsafe) ``torch.load`` would run it."""
    payload = {"w": torch.ones(1), "payload": TouchesAFile(target)}
    torch.save(payload, path, pickle_module=pickle)
    torch.load(path, weights_only=False)
    assert target.exists()
    target.unlink()


def test_pickled_code_in_a_weights_file_is_refused_and_never_run(tmp_path):
    target, path = tmp_path / "pwned", tmp_path / "evil.pth"
    write_malicious(path, target)
    with pytest.raises(NddrError, match="would run code when loaded; refusing it"):
        load_state_dict(path)
    assert not target.exists()


def test_pickled_code_in_a_trainer_state_is_refused_and_never_run(save, tmp_path):
    folder = save(10)
    target, path = tmp_path / "pwned", folder / TRAINER_FILE
    write_malicious(path, target)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    content = path.read_bytes()
    manifest["files"][TRAINER_FILE] = {
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    verify_checkpoint(folder)  # The manifest matches: only the pickle check stands in the way.
    with pytest.raises(NddrError, match=r"trainer\.pt.* would run code when loaded; refusing it"):
        load_trainer_state(folder)
    assert not target.exists()


def test_load_model_of_a_save_network_file_says_what_it_lacks(tmp_path):
    network = build_network("tiny", {"seg": 3}, "nddr", backbone_options={"width": 4})
    path = save_network(network, tmp_path / "net.pt")
    with pytest.raises(NddrError, match=r"is a network file \(nddr.save_network\), not a training"):
        load_model(path)


def _edit_tasks(model_file: pathlib.Path, value: str) -> None:
    with safe_open(str(model_file), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    save_file(tensors, str(model_file), metadata={**metadata, "nddr_tasks": value})


@pytest.mark.parametrize(
    "value, message",
    [
        ('[{"name": "seg"', "metadata 'nddr_tasks' is not valid JSON"),
        ('{"seg": 1}', "metadata 'nddr_tasks' is a dict, not a list"),
        ('[{"name": "seg", "kind": "segmentation"}]', "does not have exactly the keys"),
        (
            '[{"name": "seg", "kind": "segmentation", "num_classes": "3", "class_names": null, '
            '"weight": 1}]',
            "num_classes = '3' has the wrong type",
        ),
        (
            '[{"name": "seg", "kind": "segmentaton", "num_classes": 3, "class_names": null, '
            '"weight": 1}]',
            "unknown target kind 'segmentaton'",
        ),
        (
            '[{"name": "depth", "kind": "depth", "num_classes": null, "class_names": null, '
            '"weight": 1}]',
            "names tasks ['depth'] but the network has ['seg']",
        ),
        (
            '[{"name": "seg", "kind": "segmentation", "num_classes": 3, "class_names": null, '
            '"weight": 1, "options": []}]',
            "options = [] has the wrong type",
        ),
        (
            '[{"name": "seg", "kind": "segmentation", "num_classes": 3, "class_names": null, '
            '"weight": 1, "options": {"space": "encoded"}}]',
            "task 'seg' (segmentation) has no option 'space': it takes none",
        ),
    ],
)
def test_edited_task_metadata_is_one_line_naming_the_key(save, tmp_path, value, message):
    folder = save(10)
    (folder / MANIFEST_FILE).unlink()  # as if saved before manifests: only the metadata tells
    _edit_tasks(folder / MODEL_FILE, value)
    with pytest.raises(NddrError, match=re.escape(message)) as error:
        load_model(folder)
    assert MODEL_FILE in str(error.value) and "\n" not in str(error.value)


def test_task_options_survive_the_checkpoint_and_old_entries_load_with_defaults(tmp_path):
    network = build_network("tiny", {"normals": 3}, "single", backbone_options={"width": 4})
    tasks = [build_task("normals", TargetSpec("normals"), 20.0, {"space": "encoded"})]
    folder = save_checkpoint(tmp_path / "run", 1, network, tasks, {"seed": 1}, {"step": 1})
    _, loaded, _ = load_model(folder)
    assert loaded[0].space == "encoded" and loaded[0].weight == 20.0
    (folder / MANIFEST_FILE).unlink()
    _edit_tasks(
        folder / MODEL_FILE,
        '[{"name": "normals", "kind": "normals", "num_classes": null, "class_names": null, '
        '"weight": 1}]',
    )
    assert load_model(folder)[1][0].space == "unit"  # saved before task options existed


def test_load_run_gives_the_network_tasks_and_config_of_a_checkpoint(tmp_path):
    """``load_run`` takes a run folder, a checkpoint folder or its model file alike, and gives
    the experiment as a validated Config; ``load_model`` (the earlier name) the stored dict."""
    from nddr.training.config import Config, build_config

    network = build_network("tiny", {"seg": 3}, "nddr", backbone_options={"width": 4})
    tasks = [build_task("seg", TargetSpec("segmentation", 3))]
    experiment = build_config({}, ["optim.steps=7"]).to_dict()
    folder = save_checkpoint(tmp_path / "run", 7, network, tasks, experiment, {"step": 7})
    for path in (tmp_path / "run", folder, folder / MODEL_FILE):
        loaded, loaded_tasks, config = load_run(path)
        assert isinstance(config, Config) and config.optim.steps == 7
        assert [task.name for task in loaded_tasks] == ["seg"]
        assert torch.equal(loaded.state_dict()["heads.seg.fc8.bias"], network.heads.seg.fc8.bias)
    assert load_model(folder)[2] == experiment
    assert nddr.load_run is load_run and nddr.training.load_run is load_run
