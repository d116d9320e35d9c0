import lzma
import shutil

import pytest

from factbench import data
from factbench.errors import DataError


def test_totals_match_the_published_counts():
    totals = {s: sum(c[s] for c in data.stats().values()) for s in data.SPLITS}
    assert totals == {"train": 176560, "dev": 22068, "test": 22075}
    assert len(data.RELATIONS) == 24


def test_every_row_has_a_stable_id_and_a_subject_from_its_template():
    for split in data.SPLITS:
        for i, f in enumerate(data.load(split, ["P40"])):
            assert f.id == f"P40/{split}/{i}"
            assert f.template.replace("[X]", f.subject) == f.question
            assert f.answers and all(isinstance(a, str) for a in f.answers)


def test_known_rows():
    picasso = data.get(["P40/test/1"])[0]
    assert picasso.question == "Who is José Ruiz y Blasco's child?"
    assert picasso.subject == "José Ruiz y Blasco"
    assert picasso.answers == ("Pablo Picasso",)
    # P131 and P276 share a template; the relation comes from the file, not the text.
    assert data.load("dev", ["P131"])[0].template == data.load("dev", ["P276"])[0].template
    assert data.load("dev", ["P276"])[0].relation == "P276"


def test_relation_groups_partition_the_relations():
    groups = data.IN_DISTRIBUTION + data.OUT_OF_DISTRIBUTION + data.DROPPED
    assert sorted(groups) == sorted(data.RELATIONS)


@pytest.fixture
def data_copy(tmp_path):
    dst = tmp_path / "eq"
    shutil.copytree(data.DATA_DIR, dst)
    return dst


def test_corrupted_file_is_refused(data_copy):
    path = data_copy / "dev" / "P17.dev.json.xz"
    raw = lzma.decompress(path.read_bytes()).replace(b"Peru", b"Pern", 1)
    path.write_bytes(lzma.compress(raw))
    with pytest.raises(DataError, match="fails its checksum"):
        data.load("dev", ["P17"], data_dir=data_copy)


def test_truncated_and_missing_files_are_refused(data_copy):
    (data_copy / "dev" / "P19.dev.json.xz").write_bytes(b"not xz")
    with pytest.raises(DataError, match="corrupted"):
        data.load("dev", ["P19"], data_dir=data_copy)
    (data_copy / "dev" / "P26.dev.json.xz").unlink()
    with pytest.raises(DataError, match="missing"):
        data.load("dev", ["P26"], data_dir=data_copy)


def test_bad_names_are_refused():
    with pytest.raises(DataError, match="unknown relation"):
        data.load("dev", ["P999"])
    with pytest.raises(DataError, match="unknown split"):
        data.load("validation")
    with pytest.raises(DataError, match="no EntityQuestions fact"):
        data.get(["P17/dev/999999"])


@pytest.mark.parametrize("sums, message", [
    (b"\xff\xfe not utf-8\n", "not UTF-8"),
    (b"just-one-field\n", r"line 1 is not '<sha256> <file>'"),
    (b"abc dev/P17.dev.json\n", r"line 1 is not '<sha256> <file>'"),
])
def test_a_damaged_checksum_list_is_refused(data_copy, sums, message):
    (data_copy / "SHA256SUMS").write_bytes(sums)
    with pytest.raises(DataError, match=message + ".*reinstall factbench"):
        data.load("dev", ["P17"], data_dir=data_copy)


def test_a_truncated_file_and_ids_that_are_not_ids_are_refused(data_copy):
    path = data_copy / "dev" / "P36.dev.json.xz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="corrupted"):
        data.load("dev", ["P36"], data_dir=data_copy)
    for bad in (None, 17, ["P17", "dev", "0"], "P17/dev"):
        with pytest.raises(DataError, match="no EntityQuestions fact"):
            data.get([bad])
