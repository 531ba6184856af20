"""``nddr reproduce`` on the user's own data: a suite's rows trained on a ``folder`` dataset."""

from nddr.cli import main
from tests.data.folder.test_dataset import make_folder


def test_a_cpu_suite_row_trains_on_a_folder_dataset(tmp_path, capsys):
    root = make_folder(tmp_path / "data", [f"{k:02d}" for k in range(8)], size=(32, 40))
    overrides = [
        "data.name=folder",
        f"data.root={root}",
        "data.options={}",
        "data.batch_size=4",
        "data.crop_size=32",
        "optim.steps=1",
        "model.backbone_options={width: 4}",
        "run.progress=false",
    ]
    argv = ["reproduce", "cpu-scenes", "--only", "multi_task", "--out", str(tmp_path / "runs")]
    assert main([*argv, *(f"--set={override}" for override in overrides)]) == 0
    table = (tmp_path / "runs" / "cpu-scenes.md").read_text()
    assert "| single_task |" in table and "| multi_task |" in table
    trained = (tmp_path / "runs" / "cpu" / "scenes" / "multi-seed0" / "config.yaml").read_text()
    assert "name: folder" in trained and str(root) in trained
