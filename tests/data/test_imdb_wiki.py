"""IMDB-WIKI: parsing the real .mat structure, ages from MATLAB dates, filters, subject split."""

from datetime import date, datetime

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from nddr.data.base import TargetSpec, check_sample
from nddr.data.imdb_wiki import (
    IMDBWiki,
    ages_at_photo,
    datenum_to_datetime,
    datenum_to_datetime64,
    read_imdb_wiki_mat,
    split_subjects,
)
from nddr.errors import NddrError


def datenum(year: int, month: int = 1, day: int = 1) -> float:
    """MATLAB's datenum(year, month, day)."""
    return float(date(year, month, day).toordinal() + 366)


def row(subject, path="01/a.jpg", **fields):
    """One metadata row: a 30-year-old man with exactly one face, unless overridden."""
    values = {
        "dob": datenum(1970, 3, 4),
        "photo_taken": 2000,
        "full_path": path,
        "gender": 1.0,
        "face_location": [11.0, 21.0, 50.0, 60.0],
        "face_score": 3.5,
        "second_face_score": np.nan,
        "subject": subject,
    }
    values.update(fields)
    return values


def write_mat(path, rows, struct="imdb", drop=(), extra=None):
    """A .mat in the structure of the real files: a 1x1 struct of 1xN fields, cells for
    full_path, face_location and name (celeb_id for imdb, name for wiki)."""
    n = len(rows)

    def cells(values):
        array = np.empty((1, n), dtype=object)
        for i, value in enumerate(values):
            array[0, i] = value
        return array

    fields = {
        "dob": np.array([[r["dob"] for r in rows]]),
        "photo_taken": np.array([[r["photo_taken"] for r in rows]], dtype=np.uint16),
        "full_path": cells([r["full_path"] for r in rows]),
        "gender": np.array([[r["gender"] for r in rows]]),
        "face_location": cells([np.array([r["face_location"]], dtype=float) for r in rows]),
        "face_score": np.array([[r["face_score"] for r in rows]]),
        "second_face_score": np.array([[r["second_face_score"] for r in rows]]),
    }
    if struct == "imdb":
        fields["name"] = cells([f"Person {r['subject']}" for r in rows])
        fields["celeb_id"] = np.array([[r["subject"] for r in rows]], dtype=np.uint16)
    else:
        fields["name"] = cells([str(r["subject"]) for r in rows])
    for name in drop:
        del fields[name]
    fields.update(extra or {})
    sio.savemat(path, {struct: fields})
    return path


def write_face(path, size=(80, 100), box=(10, 20, 50, 60)):
    """A JPEG: black, with a white face box (0-based half-open left, top, right, bottom)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    left, top, right, bottom = box
    pixels[top:bottom, left:right] = 255
    Image.fromarray(pixels).save(path, quality=95)


def many_subjects(num_subjects=30, per_subject=2):
    return [
        row(s, path=f"{s % 10:02d}/nm{s:07d}_{k}.jpg", dob=datenum(1950 + s, 2, 2))
        for s in range(1, num_subjects + 1)
        for k in range(per_subject)
    ]


def test_fixture_nesting_matches_the_real_files(tmp_path):
    write_mat(tmp_path / "imdb.mat", [row(7, path="01/nm0000001_rm124825600_1899-5-10_1968.jpg")])
    record = sio.loadmat(tmp_path / "imdb.mat")["imdb"][0, 0]
    assert record["full_path"][0, 0][0] == "01/nm0000001_rm124825600_1899-5-10_1968.jpg"
    assert np.array_equal(record["face_location"][0, 0][0], [11, 21, 50, 60])
    assert record["dob"].shape == (1, 1) and record["celeb_id"][0, 0] == 7


def test_datenum_conversion():
    assert datenum_to_datetime(367) == datetime(1, 1, 1)
    assert datenum_to_datetime(730668.5) == datetime(2000, 7, 1, 12)
    assert datenum_to_datetime(datenum(1899, 5, 10)) == datetime(1899, 5, 10)
    with pytest.raises(NddrError, match="outside the years"):
        datenum_to_datetime(100.0)
    rng = np.random.default_rng(0)
    numbers = rng.uniform(367, 800000, 300)
    expected = [np.datetime64(datenum_to_datetime(x).date()) for x in numbers]
    assert np.array_equal(datenum_to_datetime64(numbers), np.array(expected))
    assert np.isnat(datenum_to_datetime64([np.nan, np.inf, 0.0, 366.0, 4e6])).all()


def test_ages_follow_the_mid_year_convention():
    dobs = [datenum(1970, 6, 30), datenum(1970, 7, 1), datenum(1970, 7, 2), datenum(1970, 12, 31)]
    ages, valid = ages_at_photo(np.array(dobs), np.full(4, 2000))
    assert valid.all() and ages.tolist() == [30, 30, 29, 29]
    ages, _ = ages_at_photo(np.array(dobs), np.full(4, 2000), rule="year")
    assert ages.tolist() == [30, 30, 30, 30]
    ages, valid = ages_at_photo(np.array([np.nan, 5.0, dobs[0]]), np.array([2000, 2000, 0]))
    assert not valid.any() and (ages == -1).all()
    with pytest.raises(NddrError, match="age_rule"):
        ages_at_photo(np.array(dobs), np.full(4, 2000), rule="exact")


def test_ages_agree_with_the_authors_matlab_formula():
    """[age, ~] = datevec(datenum(photo_taken, 7, 1) - dob), emulated, away from 1 July."""
    rng = np.random.default_rng(1)
    dob = rng.integers(datenum(1900), datenum(2010), 2000).astype(float)
    taken = rng.integers(1960, 2016, 2000)
    july = np.array([datenum(int(t), 7, 1) for t in taken])
    difference = july - dob
    matlab = np.array([0 if d < 367 else datenum_to_datetime(d).year for d in difference])
    matlab[difference < 1] = -1
    ages, _ = ages_at_photo(dob, taken)
    births = [datenum_to_datetime(d) for d in dob]
    far = np.array([abs((b - datetime(b.year, 7, 1)).days) > 3 for b in births])
    compared = far & (difference >= 1)
    assert compared.sum() > 1000
    assert np.array_equal(ages[compared], matlab[compared])


def test_filters_and_stats(tmp_path):
    rows = [
        row(1),
        row(2, dob=np.nan),
        row(3, dob=12.0),
        row(4, face_score=-np.inf),
        row(5, second_face_score=1.2),
        row(6, gender=np.nan),
        row(7, dob=datenum(2001, 1, 1)),  # born after the photo: age -1
        row(8, dob=datenum(1890, 1, 1)),  # age 110
        row(9, face_location=[5.0, 5.0, 5.0, 30.0]),  # zero width
        row(10, dob=datenum(1900, 6, 1)),  # age 100 is out of range (0..99)
        row(11, dob=datenum(1901, 6, 1), gender=0.0),  # age 99 is kept
        row(12, dob=datenum(2000, 6, 1)),  # age 0 is kept
    ]
    table = read_imdb_wiki_mat(write_mat(tmp_path / "imdb.mat", rows))
    assert table.stats["total"] == 12 and table.stats["kept"] == 3
    assert table.stats["dropped"] == {
        "bad_date": 2,
        "no_face": 1,
        "multiple_faces": 1,
        "unknown_gender": 1,
        "age_out_of_range": 3,
        "no_subject": 0,
        "bad_face_box": 1,
    }
    assert table.subjects.tolist() == [1, 11, 12]
    assert table.ages.tolist() == [30, 99, 0]
    assert table.genders.tolist() == [1, 0, 1]
    assert table.boxes[0].tolist() == [10.0, 20.0, 50.0, 60.0]  # MATLAB 1-based to 0-based
    assert table.paths.tolist() == ["01/a.jpg"] * 3


def test_wiki_uses_names_as_subjects(tmp_path):
    rows = [row("Ada"), row("Ada"), row("Bob"), row(""), row("Cy", gender=0.0)]
    table = read_imdb_wiki_mat(write_mat(tmp_path / "wiki.mat", rows, struct="wiki"))
    assert table.struct == "wiki" and table.stats["dropped"]["no_subject"] == 1
    assert table.subjects.tolist() == ["Ada", "Ada", "Bob", "Cy"]
    assert table.stats["subjects"] == 3


def test_split_is_by_subject_seeded_and_deterministic(tmp_path):
    write_mat(tmp_path / "imdb.mat", many_subjects(30, 2))
    train = IMDBWiki(tmp_path, "train", eval_subjects=5, seed=0)
    test = IMDBWiki(tmp_path, "test", eval_subjects=5, seed=0)
    assert len(set(test.subjects)) == 5 and len(test) == 10
    assert len(set(train.subjects)) == 25 and len(train) == 50
    assert not set(train.subjects) & set(test.subjects)
    assert test.stats["test_subjects"] == 5 and test.stats["train_images"] == 50
    again = IMDBWiki(tmp_path, "test", eval_subjects=5, seed=0)
    assert np.array_equal(again.subjects, test.subjects)
    other = IMDBWiki(tmp_path, "test", eval_subjects=5, seed=1)
    assert set(other.subjects) != set(test.subjects)
    # The split depends only on the set of subjects, not on the order of the rows.
    subjects = np.array([3, 1, 2, 3, 9, 1, 2, 9, 5, 5])
    shuffled = np.random.default_rng(0).permutation(len(subjects))
    chosen = set(subjects[split_subjects(subjects, 2, 7)])
    assert chosen == set(subjects[shuffled][split_subjects(subjects[shuffled], 2, 7)])
    with pytest.raises(NddrError, match="30 subjects after filtering"):
        IMDBWiki(tmp_path, "train", eval_subjects=30)
    with pytest.raises(NddrError, match=r"split 'test' .* is empty"):
        IMDBWiki(tmp_path, "test", eval_subjects=0)


def test_samples_are_face_crops(tmp_path):
    # Both rows: a white face at MATLAB [11 21 50 60], i.e. 0-based box (10, 20, 50, 60).
    write_mat(tmp_path / "imdb.mat", [row(1, path="01/x.jpg"), row(2, path="02/y.jpg")])
    write_face(tmp_path / "01" / "x.jpg")
    write_face(tmp_path / "02" / "y.jpg")
    dataset = IMDBWiki(tmp_path, "train", eval_subjects=1, image_size=32, margin=0.0)
    assert dataset.targets == {
        "age": TargetSpec("age", 100),
        "gender": TargetSpec("classification", 2, ("female", "male")),
    }
    sample = dataset[0]
    check_sample(sample, dataset.targets, dataset.source(0))
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == (32, 32, 3)
    assert sample["age"] == 30 and sample["gender"] == 1
    assert sample["image"].astype(float).mean() > 240  # exactly the white face box
    assert dataset.source(0) == str(tmp_path / dataset.paths[0])

    wide = IMDBWiki(tmp_path, "train", eval_subjects=1, image_size=30, margin=0.5)
    crop = wide.load_raw(0)["image"].astype(float)
    assert crop.shape == (30, 30, 3)
    assert crop[10:20, 10:20].mean() > 240  # the face in the middle half
    assert crop[:5, :5].mean() < 15 and crop[-5:, -5:].mean() < 15  # the margin around it


def test_crop_beyond_the_image_is_padded(tmp_path):
    rows = [row(s, path="a.jpg", face_location=[1, 1, 40, 40]) for s in (1, 2)]
    write_mat(tmp_path / "imdb.mat", rows)
    write_face(tmp_path / "a.jpg", box=(0, 0, 40, 40))
    dataset = IMDBWiki(tmp_path, "test", eval_subjects=1, image_size=60, margin=0.5)
    crop = dataset.load_raw(0)["image"].astype(float)  # box (-20, -20, 60, 60), 80 px wide
    assert crop.shape == (60, 60, 3)
    assert crop[:13, :].mean() < 15 and crop[:, :13].mean() < 15  # black padding
    assert crop[17:43, 17:43].mean() > 240


def test_task_selection(tmp_path):
    write_mat(tmp_path / "imdb.mat", [row(1, path="a.jpg"), row(2, path="a.jpg")])
    write_face(tmp_path / "a.jpg")
    dataset = IMDBWiki(tmp_path, eval_subjects=1, tasks=["gender"], image_size=16)
    assert list(dataset.targets) == ["gender"] and "age" not in dataset.load_raw(0)
    with pytest.raises(NddrError, match="no target 'race'"):
        IMDBWiki(tmp_path, eval_subjects=1, tasks=["race"])


def test_mat_discovery_errors(tmp_path):
    with pytest.raises(NddrError, match="IMDB-WIKI root"):
        IMDBWiki(tmp_path / "nowhere")
    with pytest.raises(NddrError, match=r"no imdb.mat or wiki.mat"):
        IMDBWiki(tmp_path)
    with pytest.raises(NddrError, match=r"metadata file .*missing.mat.* does not exist"):
        IMDBWiki(tmp_path, mat="missing.mat")
    write_mat(tmp_path / "imdb.mat", many_subjects(3, 1))
    write_mat(tmp_path / "wiki.mat", many_subjects(3, 1), struct="wiki")
    with pytest.raises(NddrError, match=r"both imdb.mat and wiki.mat"):
        IMDBWiki(tmp_path, eval_subjects=1)
    assert len(IMDBWiki(tmp_path, eval_subjects=1, mat="wiki.mat")) == 2
    assert len(IMDBWiki(tmp_path, eval_subjects=1, mat=tmp_path / "imdb.mat")) == 2


def test_unreadable_and_wrong_mat_files(tmp_path):
    (tmp_path / "junk.mat").write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(NddrError, match=r"junk.mat.* not a readable MATLAB v5"):
        read_imdb_wiki_mat(tmp_path / "junk.mat")
    header = b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM"
    (tmp_path / "hdf5.mat").write_bytes(header + b"\0" * 512)
    with pytest.raises(NddrError, match=r"hdf5.mat.* v7.3"):
        read_imdb_wiki_mat(tmp_path / "hdf5.mat")
    sio.savemat(tmp_path / "other.mat", {"faces": np.zeros((2, 2))})
    with pytest.raises(NddrError, match=r"other.mat.* no 'imdb' or 'wiki' struct \(faces\)"):
        read_imdb_wiki_mat(tmp_path / "other.mat")
    sio.savemat(tmp_path / "flat.mat", {"imdb": np.zeros((1, 3))})
    with pytest.raises(NddrError, match=r"flat.mat.* not a struct"):
        read_imdb_wiki_mat(tmp_path / "flat.mat")
    with pytest.raises(NddrError, match="age_rule"):
        read_imdb_wiki_mat(tmp_path / "flat.mat", age_rule="exact")


def test_missing_fields_and_length_mismatch(tmp_path):
    path = write_mat(tmp_path / "a.mat", many_subjects(3, 1), drop=("dob", "face_score"))
    with pytest.raises(NddrError, match=r"a.mat.* lacks the field\(s\) dob, face_score"):
        read_imdb_wiki_mat(path)
    path = write_mat(tmp_path / "b.mat", many_subjects(3, 1), drop=("celeb_id", "name"))
    with pytest.raises(NddrError, match=r"celeb_id \(imdb\) or name \(wiki\)"):
        read_imdb_wiki_mat(path)
    path = write_mat(tmp_path / "c.mat", many_subjects(3, 1), extra={"gender": np.ones((1, 2))})
    with pytest.raises(NddrError, match=r"c.mat.* field gender has 2 entries but dob has 3"):
        read_imdb_wiki_mat(path)
    path = write_mat(tmp_path / "d.mat", many_subjects(3, 1), extra={"gender": np.ones((2, 3))})
    with pytest.raises(NddrError, match=r"field gender has shape \(2, 3\)"):
        read_imdb_wiki_mat(path)


def test_face_location_of_wrong_shape(tmp_path):
    rows = many_subjects(3, 1)
    rows[1]["face_location"] = [1.0, 2.0, 3.0]
    path = write_mat(tmp_path / "imdb.mat", rows)
    with pytest.raises(NddrError, match=r"imdb.mat.* face_location of row 2 has shape \(1, 3\)"):
        read_imdb_wiki_mat(path)
    rows[1]["face_location"] = [[1.0], [2.0], [30.0], [40.0]]  # 4x1 is read as well
    path = write_mat(tmp_path / "ok.mat", rows)
    assert read_imdb_wiki_mat(path).boxes[1].tolist() == [0.0, 1.0, 30.0, 40.0]


def test_missing_and_undecodable_images(tmp_path):
    write_mat(tmp_path / "imdb.mat", [row(1, path="01/gone.jpg"), row(2, path="01/gone.jpg")])
    dataset = IMDBWiki(tmp_path, eval_subjects=1)
    with pytest.raises(NddrError, match=r"IMDB-WIKI image .*gone.jpg.* does not exist.*imdb.mat"):
        dataset[0]
    (tmp_path / "01").mkdir()
    (tmp_path / "01" / "gone.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(NddrError, match=r"gone.jpg.* cannot be decoded"):
        dataset[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "val"}, "unknown IMDBWiki split 'val'"),
        ({"eval_subjects": -1}, "eval_subjects must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"image_size": 0}, "image_size must be an integer >= 1"),
        ({"margin": -0.1}, "margin must be a number >= 0"),
        ({"margin": float("nan")}, "margin"),
        ({"age_rule": "exact"}, "age_rule"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    write_mat(tmp_path / "imdb.mat", many_subjects(3, 1))
    with pytest.raises(NddrError, match=match):
        IMDBWiki(tmp_path, **{"eval_subjects": 1, **kwargs})
