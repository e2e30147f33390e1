"""One reader for eval and tune (fondasi.data.files): every format, with and without a BOM,
folders of splits, the split each command reads, and one clear line for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fondasi.data import files
from fondasi.errors import BadInputError
from fondasi.evaluate import datasets as eval_data
from fondasi.evaluate.config import DataSpec
from fondasi.tune import data as tune_data

# Text that trips careless readers: commas, quotes, a tab-free TSV cell, leading zeros, an
# empty-looking "NA", Indonesian, and a line separator that str.splitlines would cut at.
ROWS = [
    {"text": 'Pengiriman cepat, "mantap"', "label": "positif"},
    {"text": "Barang rusak; kurir lambat", "label": "negatif"},
    {"text": "007", "label": "NA"},
    {"text": "dua baris\u2028dalam satu", "label": "positif"},
]
BOM = b"\xef\xbb\xbf"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _delimited(rows: list[dict[str, Any]], sep: str) -> bytes:
    def cell(value: str) -> str:
        if any(c in value for c in f'{sep}"\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [sep.join(rows[0])] + [sep.join(cell(str(v)) for v in r.values()) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def _parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


WRITERS: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "jsonl": _jsonl,
    "ndjson": _jsonl,
    "json": lambda rows: json.dumps(rows, ensure_ascii=False, indent=1).encode(),
    "csv": lambda rows: _delimited(rows, ","),
    "tsv": lambda rows: _delimited(rows, "\t"),
}


def write(folder: Path, name: str, rows: list[dict[str, Any]], bom: int = 0) -> Path:
    """``rows`` as ``name`` (its suffix says the format)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix[1:]
    if suffix == "parquet":
        _parquet(rows, path)
    else:
        path.write_bytes((BOM if bom else b"") + WRITERS[suffix](rows))
    return path


def both_read(path: Path) -> list[dict[str, Any]]:
    """What tune trains on and what eval scores: they must be the same rows."""
    tuned = tune_data.read_rows(path)
    examples = eval_data.load_examples(DataSpec(path=str(path)), ("text", "label"))
    assert [e.fields for e in examples] == list(tuned)
    return list(tuned)


# -- formats ----------------------------------------------------------------------------------


FORMATS = [
    *((suffix, bom) for suffix in ("jsonl", "ndjson", "json", "csv", "tsv") for bom in (0, 1)),
    ("parquet", 0),  # binary: no byte-order mark
]


@pytest.mark.parametrize(("suffix", "bom"), FORMATS, ids=[f"{s}{'-bom' * b}" for s, b in FORMATS])
def test_every_format_gives_eval_and_tune_the_same_rows(
    tmp_path: Path, suffix: str, bom: int
) -> None:
    path = write(tmp_path, f"data.{suffix}", ROWS, bom=bom)
    assert both_read(path) == ROWS
    assert files.read_file(path).columns == ["text", "label"]  # no "\ufefftext"


def test_json_may_also_be_json_lines_and_keeps_every_value_exactly(tmp_path: Path) -> None:
    # pyarrow.json would merge the objects into one struct, adding d2: None to the first row.
    rows = [
        {"query": "ongkir", "relevant": {"d1": 1}, "n": 1},
        {"query": "refund", "relevant": {"d2": 2, "d3": 1}, "n": "dua"},
    ]
    for name in ("lines.json", "lines.jsonl"):
        path = tmp_path / name
        path.write_bytes(_jsonl(rows))
        assert files.read_file(path) == rows
    (tmp_path / "one.json").write_text('{"text": "satu", "label": "a"}', "utf-8")
    assert files.read_file(tmp_path / "one.json") == [{"text": "satu", "label": "a"}]


def test_csv_and_tsv_values_stay_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('id,text,label\n007,"satu\nbaris dua",\n1.50,NA,1\n', "utf-8")
    assert files.read_file(path) == [
        {"id": "007", "text": "satu\nbaris dua", "label": ""},
        {"id": "1.50", "text": "NA", "label": "1"},
    ]
    tsv = tmp_path / "d.tsv"
    tsv.write_text("text\tlabel\nkata, koma; titik\t1\n", "utf-8")
    assert both_read(tsv) == [{"text": "kata, koma; titik", "label": "1"}]


def test_parquet_keeps_its_own_types(tmp_path: Path) -> None:
    path = write(tmp_path, "d.parquet", [{"text": "a", "label": 1}, {"text": "b", "label": 0}])
    assert tune_data.read_rows(path) == [{"text": "a", "label": 1}, {"text": "b", "label": 0}]


# -- folders and splits -----------------------------------------------------------------------

TRAIN = [{"text": f"latih {i}", "label": "ab"[i % 2]} for i in range(6)]
DEV = [{"text": "dev 1", "label": "a"}, {"text": "dev 2", "label": "b"}]
TEST = [{"text": "uji 1", "label": "b"}, {"text": "uji 2", "label": "a"}]


def _split_files(root: Path) -> Path:
    write(root, "train.jsonl", TRAIN)
    write(root, "validation.csv", DEV, bom=1)
    write(root, "test.tsv", TEST)
    (root / "README.md").write_text("not data", "utf-8")
    return root


def _hub_shards(root: Path) -> Path:
    write(root / "data", "train-00000-of-00002.parquet", TRAIN[:4])
    write(root / "data", "train-00001-of-00002.parquet", TRAIN[4:])
    write(root / "data", "dev-00000-of-00001.parquet", DEV)
    write(root / "data", "test-00000-of-00001.parquet", TEST)
    return root


def _saved(root: Path) -> Path:
    import datasets

    splits = {"train": TRAIN, "validation": DEV, "test": TEST, "unsupervised": [{"text": "u"}]}
    datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    ).save_to_disk(str(root))
    return root


LAYOUTS = {"split-files": _split_files, "hub-shards": _hub_shards, "saved-datasets": _saved}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_folder_gives_eval_and_tune_the_same_splits(tmp_path: Path, layout: str) -> None:
    folder = LAYOUTS[layout](tmp_path / layout)
    spec = DataSpec(path=str(folder))
    assert eval_data.splits_in(spec) == files.splits_in(folder) == ["train", "dev", "test"]
    # tune trains on train and measures on dev; eval scores test and draws shots from train.
    assert tune_data.read_rows(folder) == TRAIN
    assert tune_data.dev_rows(folder) == DEV
    fields = ("text", "label")
    assert [e.fields for e in eval_data.load_examples(spec, fields)] == TEST
    assert [e.fields for e in eval_data.load_examples(spec, fields, split="train")] == TRAIN
    assert [e.fields for e in eval_data.load_examples(spec, fields, split="dev")] == DEV


def test_eval_scores_dev_when_a_folder_has_no_test(tmp_path: Path) -> None:
    write(tmp_path, "train.csv", TRAIN)
    write(tmp_path, "dev.jsonl", DEV)
    assert eval_data.read_rows(tmp_path) == DEV
    assert tune_data.read_rows(tmp_path) == TRAIN
    with pytest.raises(BadInputError, match=r"no test split \(it has: train, dev\)"):
        eval_data.read_rows(tmp_path, "test")


def test_a_file_and_a_single_saved_dataset_have_no_splits(tmp_path: Path) -> None:
    import datasets

    path = write(tmp_path, "d.jsonl", TRAIN)
    datasets.Dataset.from_list(TRAIN).save_to_disk(str(tmp_path / "one"))
    for source in (path, tmp_path / "one"):
        assert files.splits_in(source) == []
        assert tune_data.dev_rows(source) is None
        assert both_read(source) == TRAIN


def test_a_file_is_split_by_one_draw_for_eval_and_tune(tmp_path: Path) -> None:
    """Eval holds out train rows and tune dev rows with files.holdout: same seed and
    fraction, same rows, stratified by label."""
    rows = [{"text": f"t{i}", "label": "abc"[i % 3]} for i in range(30)]
    path = write(tmp_path, "d.jsonl", rows)
    examples = eval_data.load_examples(DataSpec(path=str(path)), ("text", "label"))
    eval_train, eval_test = eval_data.split(examples, 0.2, seed=7, stratify="label")
    tune_train, tune_dev = tune_data.split(tune_data.read_rows(path), "label", 0.2, 7)
    assert sorted(e.fields["text"] for e in eval_train) == sorted(r["text"] for r in tune_dev)
    assert sorted(e.fields["text"] for e in eval_test) == sorted(r["text"] for r in tune_train)
    assert {r["label"] for r in tune_dev} == {"a", "b", "c"}  # two of each label's ten


def test_shards_say_which_file_a_row_came_from(tmp_path: Path) -> None:
    rows = files.read_rows(_hub_shards(tmp_path), ("train",))
    assert rows.where(0).endswith("data/train-00000-of-00002.parquet row 1")
    assert rows.where(5).endswith("data/train-00001-of-00002.parquet row 2")


# -- bad input: one line, saying where --------------------------------------------------------


def _bad(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


BAD_FILES = [
    ("d.jsonl", '{"text": "a", "label": "b"}\n\n{"text": "c",\n', r"d\.jsonl:3: not valid JSON"),
    (
        "d.jsonl",
        '{"text": "a", "label": "b"}\n["a", "b"]\n',
        r"d\.jsonl:2: each line must be a JSON",
    ),
    ("d.json", '[{"text": "a"},\n "b"]', r"item 2 is str; give an array of JSON objects"),
    ("d.json", '[{"text": "a"},\n {"text" "b"}]', r"d\.json:2: not valid JSON"),
    ("d.jsonl", b'{"text": "a"}\n{"text": "\xff"}\n', r"d\.jsonl:2: not UTF-8 text"),
    ("d.csv", b"text,label\na,b\n\xe9t\xe9,c\n", r"d\.csv:3: not UTF-8 text"),
    ("d.csv", "text,label\na,b\nc,d,e\n", r"d\.csv row 3: Expected 2 columns, got 3"),
    ("d.tsv", "text\tlabel\na\n", r"d\.tsv row 2: Expected 2 columns, got 1"),
    ("d.csv", "text,text\na,b\n", r"d\.csv:1: the header names text more than once"),
    ("d.parquet", "not parquet", r"d\.parquet: not a Parquet file"),
    ("d.txt", "text\n", r"cannot read \.txt; give \.jsonl, \.ndjson, \.json, \.csv, \.tsv"),
    ("d.jsonl", "", r"d\.jsonl has no rows"),
    ("d.json", "\n", r"d\.json has no rows"),
    ("d.json", "[]", r"d\.json has no rows"),
    ("d.csv", "text,label\n", r"d\.csv has no rows"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_bad_files_are_one_clear_line_for_eval_and_tune(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = _bad(tmp_path, name, content)
    with pytest.raises(BadInputError, match=message):
        tune_data.read_rows(path)
    with pytest.raises(BadInputError, match=message):
        eval_data.load_examples(DataSpec(path=str(path)), ("text", "label"))


BAD_FOLDERS: list[tuple[dict[str, str], str]] = [
    ({}, r"no train split \(it has: no data files\)"),
    ({"train.jsonl": "{}\n", "trian.csv": "a\n"}, r"trian\.csv is not named for a split"),
    ({"train.jsonl": "{}\n", "train.csv": "a\n"}, r"train\.csv, train\.jsonl are all the train"),
    ({"dev.jsonl": "{}\n", "validation.jsonl": "{}\n"}, r"all the dev split"),
    ({"test.jsonl": '{"text": "a"}\n'}, r"no train split \(it has: test\); name the splits"),
]


@pytest.mark.parametrize(("names", "message"), BAD_FOLDERS)
def test_bad_folders_say_how_to_name_splits(
    tmp_path: Path, names: dict[str, str], message: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, content in names.items():
        _bad(folder, name, content)
    with pytest.raises(BadInputError, match=message):
        tune_data.read_rows(folder)


def test_a_saved_dataset_dict_names_its_splits_once(tmp_path: Path) -> None:
    import datasets

    one = datasets.Dataset.from_list(DEV)
    datasets.DatasetDict({"train": one, "dev": one, "validation": one}).save_to_disk(
        str(tmp_path / "both")
    )
    with pytest.raises(BadInputError, match="dev and validation are both the dev split"):
        tune_data.read_rows(tmp_path / "both")
    datasets.DatasetDict({"train": one}).save_to_disk(str(tmp_path / "train-only"))
    with pytest.raises(BadInputError, match=r"no test or dev split \(it has: train\)"):
        eval_data.read_rows(tmp_path / "train-only")


def test_missing_and_oversize_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInputError, match="no such data file or folder"):
        tune_data.read_rows(tmp_path / "nope.jsonl")
    with pytest.raises(BadInputError, match="no such data file or folder"):
        eval_data.load_examples(DataSpec(path=str(tmp_path / "nope.csv")), ("text",))
    path = write(tmp_path, "d.csv", TRAIN)
    monkeypatch.setattr(files, "MAX_BYTES", 50)
    with pytest.raises(BadInputError, match=r"d\.csv is 0 MB, over the 0 MB limit"):
        both_read(path)
    folder = _saved(tmp_path / "saved")
    with pytest.raises(BadInputError, match=r"train is 0 MB, over the 0 MB limit"):
        tune_data.read_rows(folder)


def test_missing_columns_and_fields_name_the_line(tmp_path: Path) -> None:
    path = _bad(tmp_path, "d.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b"}\n')
    with pytest.raises(BadInputError, match=r"d\.jsonl:3: no 'label' in this row"):
        eval_data.load_examples(DataSpec(path=str(path)), ("text", "label"))
    rows = tune_data.read_rows(path)
    with pytest.raises(BadInputError, match=r"d\.jsonl:3: 'label' is missing or empty"):
        tune_data.check_rows(rows, "classification", path)
    csv_path = write(tmp_path, "d.csv", [{"ulasan": "a", "label": "x"}])
    with pytest.raises(BadInputError, match=r"d\.csv: no column 'text'; the columns are: ulasan"):
        eval_data.load_examples(DataSpec(path=str(csv_path)), ("text", "label"))
    with pytest.raises(BadInputError, match=r"the first row has: label, ulasan"):
        tune_data.detect_task(tune_data.read_rows(csv_path), csv_path)
    blank = write(tmp_path, "blank.csv", [{"text": "a", "label": "x"}, {"text": " ", "label": "y"}])
    with pytest.raises(BadInputError, match=r"blank\.csv row 3: 'text' is missing or empty"):
        tune_data.check_rows(tune_data.read_rows(blank), "classification", blank)


def test_wrong_types_name_the_line(tmp_path: Path) -> None:
    path = _bad(
        tmp_path,
        "d.jsonl",
        '{"prompt": "a", "completion": "b"}\n{"prompt": ["a"], "completion": "b"}\n',
    )
    with pytest.raises(BadInputError, match=r"d\.jsonl:2: 'prompt' must be text, not a list"):
        tune_data.check_rows(tune_data.read_rows(path), "causal-lm", path)
    chat = _bad(tmp_path, "chat.jsonl", '{"messages": [{"role": "user", "content": 1}]}\n')
    with pytest.raises(BadInputError, match=r"chat\.jsonl:1: messages need role and content"):
        tune_data.check_rows(tune_data.read_rows(chat), "causal-lm", chat)
    labels = write(tmp_path, "l.parquet", [{"text": "a", "label": {"x": 1}}])
    with pytest.raises(BadInputError, match=r"l\.parquet row 1: 'label' must be text"):
        tune_data.check_rows(tune_data.read_rows(labels), "classification", labels)
    # Rows from elsewhere (a list, not read here) are still checked, by row number.
    with pytest.raises(BadInputError, match=r"rows: row 1: 'text' is missing"):
        tune_data.check_rows([{"label": "a"}], "classification", Path("rows"))


def test_a_folders_own_splits_are_the_split_eval_and_tune_use(tmp_path: Path) -> None:
    """A folder with train, dev and test files: eval scores test and learns its few-shot
    examples and baselines from train; tune trains on train and measures on dev. Nothing is
    drawn at random when the user already split the data."""
    from fondasi.evaluate.config import EvalConfig
    from fondasi.evaluate.runner import build_context
    from fondasi.evaluate.tasks import get_task
    from fondasi.settings import Settings

    train = [{"text": f"latih {i}", "label": "ab"[i % 2]} for i in range(8)]
    dev = [{"text": f"dev {i}", "label": "ab"[i % 2]} for i in range(4)]
    test = [{"text": f"uji {i}", "label": "ab"[i % 2]} for i in range(6)]
    folder = tmp_path / "splits"
    for name, rows in (("train.jsonl", train), ("dev.jsonl", dev), ("test.csv", test)):
        write(folder, name, rows)
    config = EvalConfig(
        task="classification",
        data=DataSpec(path=str(folder)),
        candidates=[{"model": "all-minilm-l6-v2", "shots": 2}],
    )
    context, info = build_context(get_task("classification"), config, Settings.load())
    assert [e.fields["text"] for e in context.test] == [r["text"] for r in test]
    assert [e.fields["text"] for e in context.train] == [r["text"] for r in train]
    assert info["train"]["source"] == "split file"
    assert list(tune_data.read_rows(folder)) == train
    assert list(tune_data.dev_rows(folder) or []) == dev


def test_bundled_and_shot_files_are_read_by_the_same_reader(tmp_path: Path) -> None:
    """fondasi.data.read_jsonl (bundled sets, --shots files) takes a BOM and U+2028 in text
    as the eval and tune reader does, and names the bad line."""
    from fondasi.data import read_jsonl

    path = write(tmp_path, "shots.jsonl", ROWS, bom=1)
    assert read_jsonl(path) == ROWS
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "a"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(BadInputError, match=r"bad\.jsonl:2: not valid JSON"):
        read_jsonl(bad)
