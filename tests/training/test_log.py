"""The run log: one JSON line per record, TensorBoard scalars, and a clean cut on resume."""

import json

from nddr.training.log import RunLog
from nddr.training.run_folder import LOG_FILE, TENSORBOARD_DIR


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines()]


def test_each_write_is_one_json_line_with_its_step(tmp_path):
    log = RunLog(tmp_path, start_step=0, enabled=True)
    log.write(1, {"loss": 0.5, "losses": {"seg": 0.25}})
    log.write(2, {"lr": 0.01})
    log.close()
    assert _records(tmp_path) == [
        {"step": 1, "loss": 0.5, "losses": {"seg": 0.25}},
        {"step": 2, "lr": 0.01},
    ]
    assert any((tmp_path / TENSORBOARD_DIR).iterdir())


def test_resume_drops_the_entries_after_the_resumed_step(tmp_path):
    log = RunLog(tmp_path, start_step=0, enabled=True)
    for step in range(1, 6):
        log.write(step, {"loss": float(step)})
    log.close()
    resumed = RunLog(tmp_path, start_step=3, enabled=True)
    resumed.write(4, {"loss": 40.0})
    resumed.close()
    assert [(record["step"], record["loss"]) for record in _records(tmp_path)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
    ]


def test_disabled_log_writes_nothing(tmp_path):
    log = RunLog(tmp_path, start_step=0, enabled=False)
    log.write(1, {"loss": 1.0})
    log.close()
    assert not (tmp_path / LOG_FILE).exists()
    assert not (tmp_path / TENSORBOARD_DIR).exists()


def test_tensorboard_gets_nested_numbers_as_slash_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLog(tmp_path, start_step=0, enabled=True)
    log.write(7, {"loss": 1.5, "eval": {"seg": {"miou": 0.25}}, "note": "text", "done": True})
    log.close()
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["eval/seg/miou", "loss"]
    (scalar,) = events.Scalars("eval/seg/miou")
    assert (scalar.step, scalar.value) == (7, 0.25)
