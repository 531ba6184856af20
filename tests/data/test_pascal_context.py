"""PASCAL-Context loader on tiny PASCAL_MT folders: decoding, human parts, and every bad input."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from nddr.data import build_dataset
from nddr.data.base import IGNORE_INDEX, check_sample
from nddr.data.pascal_context import PART_CLASSES, SEMSEG_CLASSES, PascalContext
from nddr.errors import NddrError

H, W = 6, 8
TRAIN, VAL = ("2008_000001", "2008_000002", "2008_000003"), ("2008_000004", "2008_000005")
WITH_PERSON = ("2008_000001", "2008_000004", "2008_000005")
"""Names whose human_parts .mat holds a person with parts; 2008_000002 has a cat only and
2008_000003 has no .mat at all."""


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def part_masks() -> dict[str, np.ndarray]:
    """A person's head (rows 0-1), torso (rows 2-3) and left foot (row 5, columns 0-1)."""
    masks = {name: np.zeros((H, W), np.uint8) for name in ("head", "hair", "torso", "lfoot")}
    masks["head"][0, :4] = 1
    masks["hair"][1, :4] = 1
    masks["torso"][2:4, :4] = 1
    masks["lfoot"][5, :2] = 1
    return masks


def save_parts_mat(path: Path, objects: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    """A Pascal-Part annotation: anno.objects(k).class / class_ind / mask / parts(j).part_name,
    parts(j).mask, as scipy writes MATLAB struct arrays."""
    part_type = [("part_name", "O"), ("mask", "O")]
    object_type = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]
    records = np.zeros((1, len(objects)), dtype=object_type)
    for index, (name, parts) in enumerate(objects):
        part_records = np.zeros((1, len(parts)), dtype=part_type)
        for j, (part, mask) in enumerate(parts.items()):
            part_records[0, j] = (part, mask)
        union = np.zeros((H, W), np.uint8)
        for mask in parts.values():
            union |= mask
        class_ind = 15 if name == "person" else 8
        records[0, index] = (name, class_ind, union, part_records)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"anno": {"imname": path.stem, "objects": records}})


def make_pascal(root: Path) -> Path:
    for number, name in enumerate([*TRAIN, *VAL]):
        rng = np.random.default_rng(number)
        save_png(
            rng.integers(0, 256, (H, W, 3), dtype=np.uint8), root / "JPEGImages" / f"{name}.jpg"
        )
        semseg = rng.integers(0, 21, (H, W), dtype=np.uint8)
        semseg[0, 0], semseg[0, 1] = 255, 20
        save_png(semseg, root / "semseg" / "pascal-context" / f"{name}.png")
        saliency = np.zeros((H, W), np.uint8)
        saliency[:, : W // 2] = 200
        saliency[0, 0], saliency[0, 1] = 127, 128  # either side of the 127.5 threshold
        save_png(saliency, root / "sal_distill" / f"{name}.png")
        normals = np.zeros((H, W, 3), np.uint8)
        normals[...] = (128, 128, 255)  # facing the camera
        normals[0, 0] = (255, 128, 128)  # pointing right
        save_png(normals, root / "normals_distill" / f"{name}.png")
        if name in WITH_PERSON:
            parts = part_masks()
            save_parts_mat(root / "human_parts" / f"{name}.mat", [("cat", {}), ("person", parts)])
        elif name != "2008_000003":
            save_parts_mat(root / "human_parts" / f"{name}.mat", [("cat", {})])
    lists = root / "ImageSets" / "Context"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("".join(f"{n}\n" for n in TRAIN))
    (lists / "val.txt").write_text("".join(f"{n}\n" for n in VAL))
    return root


@pytest.fixture
def root(tmp_path):
    return make_pascal(tmp_path / "PASCAL_MT")


def test_reads_every_target_in_the_conventions(root):
    train = build_dataset("pascal_context", root, "train")
    assert isinstance(train, PascalContext) and len(train) == 3 and train.names == list(TRAIN)
    assert list(train.targets) == ["semseg", "human_parts", "saliency", "normals"]
    assert train.targets["semseg"].num_classes == len(SEMSEG_CLASSES) == 21
    assert train.targets["human_parts"].class_names == PART_CLASSES and len(PART_CLASSES) == 7
    sample = train[0]
    check_sample(sample, train.targets, train.source(0))
    assert sample["semseg"][0, 0] == IGNORE_INDEX and sample["semseg"][0, 1] == 20
    assert sample["saliency"].dtype == np.uint8
    assert sample["saliency"][0, 0] == 0 and sample["saliency"][0, 1] == 1
    assert set(np.unique(sample["saliency"])) == {0, 1}
    np.testing.assert_allclose(sample["normals"][1, 1], (0.0, 0.0, 1.0), atol=1e-2)
    np.testing.assert_allclose(sample["normals"][0, 0], (1.0, 0.0, 0.0), atol=1e-2)
    assert len(build_dataset("pascal_context", root, "test")) == 2


def test_human_parts_map_to_seven_classes_and_background(root):
    parts = PascalContext(root, "train", tasks=["human_parts"])[0]["human_parts"]
    expected = np.zeros((H, W), np.uint8)
    expected[0:2, :4] = PART_CLASSES.index("head")  # head and hair
    expected[2:4, :4] = PART_CLASSES.index("torso")
    expected[5, :2] = PART_CLASSES.index("lower leg")  # the left foot
    np.testing.assert_array_equal(parts, expected)


def test_images_without_a_person_are_ignored_and_a_missing_mat_means_no_person(root):
    data = PascalContext(root, "train", tasks=["human_parts", "saliency"])
    assert (data[1]["human_parts"] == IGNORE_INDEX).all()  # a cat only
    assert (data[2]["human_parts"] == IGNORE_INDEX).all()  # no .mat
    assert data.stats == {"human_parts_without_mat": 1}
    assert PascalContext(root, "train", tasks=["saliency"]).stats == {}


def test_a_batch_of_images_without_people_adds_no_loss_and_no_nan(root):
    import torch

    from nddr.data.transforms import JointTransform
    from nddr.tasks import build_tasks, total_loss

    data = PascalContext(root, "train", tasks=["semseg", "human_parts"])
    data.transform = JointTransform(data.targets, train=False)
    batch = torch.utils.data.default_collate([data[1], data[2]])
    tasks = build_tasks(data.targets)
    outputs = {
        "semseg": torch.randn(2, 21, H, W, requires_grad=True),
        "human_parts": torch.randn(2, 7, H, W, requires_grad=True),
    }
    total, losses = total_loss(tasks, outputs, batch)
    assert losses["human_parts"].item() == 0.0 and torch.isfinite(total)
    total.backward()
    assert torch.isfinite(outputs["human_parts"].grad).all()
    assert not outputs["human_parts"].grad.any()
    metric = tasks[1].metric()
    tasks[1].update_metric(metric, outputs["human_parts"], batch["human_parts"])
    assert int(metric.confusion.sum()) == 0


def test_targets_are_the_folders_present(root):
    import shutil

    shutil.rmtree(root / "normals_distill")
    assert list(PascalContext(root, "train").targets) == ["semseg", "human_parts", "saliency"]
    with pytest.raises(NddrError, match="has no normals target: there is no normals_distill/"):
        PascalContext(root, "train", tasks=["normals"])
    with pytest.raises(NddrError, match="has no target 'depth'"):
        PascalContext(root, "train", tasks=["depth"])


def _first(root: Path, folder: str, suffix: str) -> Path:
    return root / folder / f"{TRAIN[0]}{suffix}"


def _drop_semseg(root):
    _first(root, "semseg/pascal-context", ".png").unlink()


def _semseg_out_of_range(root):
    labels = np.zeros((H, W), np.uint8)
    labels[2, 3] = 21
    save_png(labels, _first(root, "semseg/pascal-context", ".png"))


def _saliency_rgb(root):
    save_png(np.zeros((H, W, 3), np.uint8), _first(root, "sal_distill", ".png"))


def _normals_grey(root):
    save_png(np.zeros((H, W), np.uint8), _first(root, "normals_distill", ".png"))


def _normals_16_bit(root):
    Image.fromarray(np.zeros((H, W), np.uint16)).save(_first(root, "normals_distill", ".png"))


def _semseg_wrong_size(root):
    save_png(np.zeros((H + 1, W), np.uint8), _first(root, "semseg/pascal-context", ".png"))


def _unknown_part(root):
    save_parts_mat(
        _first(root, "human_parts", ".mat"), [("person", {"tail": part_masks()["head"]})]
    )


def _not_a_mat(root):
    _first(root, "human_parts", ".mat").write_bytes(b"not a mat file")


def _list_names_missing_image(root):
    with (root / "ImageSets" / "Context" / "train.txt").open("a") as handle:
        handle.write("2008_999999\n")


def _no_list(root):
    (root / "ImageSets" / "Context" / "train.txt").unlink()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (
            _drop_semseg,
            r"semseg file '.*2008_000001\.png' of '2008_000001' \(.*train\.txt:1\) does not exist",
        ),
        (
            _list_names_missing_image,
            r"image '.*2008_999999\.jpg' of '2008_999999' \(.*train\.txt:4\) does not exist",
        ),
        (_no_list, r"train split list '.*train\.txt' does not exist"),
    ],
)
def test_missing_files_stop_at_construction(root, damage, fragment):
    damage(root)
    with pytest.raises(NddrError, match=fragment) as error:
        PascalContext(root, "train")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (
            _semseg_out_of_range,
            r"semseg file '.*2008_000001\.png' has label 21: .* 0\.\.20 and 255",
        ),
        (
            _saliency_rgb,
            r"label image '.*sal_distill.*2008_000001\.png' has mode RGB: expected one",
        ),
        (
            _normals_grey,
            r"image '.*normals_distill.*2008_000001\.png' has mode L: expected 8-bit RGB",
        ),
        (_normals_16_bit, r"normals_distill.*2008_000001\.png' has mode I;16"),
        (_semseg_wrong_size, r"semseg file '.*2008_000001\.png' is 7x8 but its image .* is 6x8"),
        (_unknown_part, r"human_parts file '.*2008_000001\.mat' has a person part 'tail'"),
        (_not_a_mat, r"human_parts file '.*2008_000001\.mat' is not a Pascal-Part annotation"),
    ],
)
def test_bad_files_name_the_file(root, damage, fragment):
    damage(root)
    data = PascalContext(root, "train")
    with pytest.raises(NddrError, match=fragment) as error:
        data[0]
    assert "\n" not in str(error.value)
    data[1]  # the other samples still load


def test_size_resizes_image_and_targets_keeping_labels_and_unit_normals(root):
    sample = build_dataset("pascal_context", root, "train", size=12)[0]
    assert sample["image"].shape == (12, 12, 3)
    for name in ("semseg", "human_parts", "saliency"):
        assert sample[name].shape == (12, 12) and sample[name].dtype == np.uint8
    original = PascalContext(root, "train")[0]
    assert set(np.unique(sample["semseg"])) <= set(np.unique(original["semseg"]))
    assert set(np.unique(sample["saliency"])) == {0, 1}
    assert sample["normals"].shape == (12, 12, 3) and sample["normals"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(sample["normals"], axis=2), 1.0, rtol=1e-5)
    with pytest.raises(NddrError, match="option size = 0 is not valid: give a side in pixels"):
        PascalContext(root, "train", size=0)
