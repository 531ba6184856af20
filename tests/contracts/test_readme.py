import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


README = (ROOT / "README.md").read_text()


def _code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quickstart_is_two_commands_and_ci_runs_the_test_one():
    quickstart = _code_blocks("bash")[0].strip().splitlines()
    assert len(quickstart) == 2
    assert quickstart[0].endswith("nddr train")
    ci = (ROOT / ".ci" / "run").read_text()
    assert quickstart[1] in ci.splitlines()


def test_python_examples_run():
    blocks = _code_blocks("python")
    assert len(blocks) >= 2
    own_backbone = next(block for block in blocks if "from_modules" in block)
    assert len(own_backbone.strip().splitlines()) <= 20
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_parameter_table_matches_the_command(capsys):
    from nddr.cli import main

    main(["models", "--params", "vgg16_lfov"])
    printed = capsys.readouterr().out.strip()
    assert printed in README


def test_resnet101_figures_match_the_command(capsys):
    from nddr.cli import main

    main(["models", "--params", "resnet101"])
    row = next(
        line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("nddr ")
    )
    assert f"add {row[4]} parameters, {row[7]} of the two" in " ".join(README.split())


def test_config_reference_matches_the_command():
    from nddr.training.config import config_reference

    assert config_reference() in README


def test_own_data_example_reads_a_folder_laid_out_as_it_says(tmp_path):
    import numpy as np
    import yaml
    from PIL import Image

    from nddr.data.folder.dataset import Folder

    own_data = README.split("## Your own data", 1)[1]
    manifest = re.search(r"```yaml\n(.*?)```", own_data, flags=re.S).group(1)
    assert len(manifest.strip().splitlines()) <= 10
    (tmp_path / "dataset.yaml").write_text(manifest)
    for folder in ("images", "labels", "depth"):
        (tmp_path / folder).mkdir()
    stems = ["0001", "0002"]
    for stem in stems:
        Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images" / f"{stem}.jpg")
        Image.fromarray(np.full((4, 6), 4, np.uint8)).save(tmp_path / "labels" / f"{stem}.png")
        Image.fromarray(np.full((4, 6), 1500, np.uint16)).save(tmp_path / "depth" / f"{stem}.png")
    (tmp_path / "scenes.csv").write_text("stem,indoor\n0001,indoor\n0002,0\n")
    sample = Folder(tmp_path, "test")[0]
    assert sample["segmentation"].max() == 4 and sample["depth"][0, 0] == 1.5
    assert yaml.safe_load(manifest)["tasks"]["indoor"]["class_names"] == ["outdoor", "indoor"]


def test_loss_balancing_table_lists_every_method_and_option():
    from nddr.training.balancing.registry import BALANCING

    section = README[README.index("### Loss balancing") : README.index("### Config reference")]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines() if "| `" in line}
    assert list(rows) == list(BALANCING)
    for name, entry in BALANCING.items():
        for option, default in entry.options.items():
            shown = "null" if default is None else default
            assert f"`{option}` ({shown}" in rows[name], (name, option)
