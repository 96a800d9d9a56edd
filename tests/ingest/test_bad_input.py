"""Bad input stops with an InputDataError naming the file, the line or column, and what was expected."""

from __future__ import annotations

import gzip

import pytest

from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.readers import read_dataset
from tests.sources import WRITERS


@pytest.fixture
def latest(tmp_path, world):
    return WRITERS["ml-latest"](tmp_path / "latest", world)


def _rewrite_line(path, line_number, text):
    lines = path.read_text().splitlines()
    lines[line_number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _fails(data_format, folder) -> InputDataError:
    with pytest.raises(InputDataError) as caught:
        read_dataset(data_format, folder)
    return caught.value


def test_missing_folder(tmp_path):
    error = _fails("ml-latest", tmp_path / "nowhere")
    assert "nowhere" in str(error) and "folder does not exist" in str(error)


def test_missing_file(latest):
    (latest / "movies.csv").unlink()
    error = _fails("ml-latest", latest)
    assert error.path.endswith("movies.csv") and "missing file" in str(error)


def test_misnamed_column(latest):
    _rewrite_line(latest / "ratings.csv", 1, "userId,itemId,rating,timestamp")
    error = _fails("ml-latest", latest)
    assert error.path.endswith("ratings.csv") and error.line == 1
    assert "'movieId'" in str(error) and "expected columns" in str(error)


def test_non_numeric_rating(latest):
    _rewrite_line(latest / "ratings.csv", 3, "1,2,four,1000300")
    error = _fails("ml-latest", latest)
    assert (error.line, error.column) == (3, "rating")
    assert "'four'" in str(error) and "a number" in str(error)


def test_non_numeric_timestamp_in_a_headerless_format(tmp_path, world):
    folder = WRITERS["ml-1m"](tmp_path / "ml1m", world)
    _rewrite_line(folder / "ratings.dat", 5, "1::2::4::yesterday")
    error = _fails("ml-1m", folder)
    assert error.path.endswith("ratings.dat")
    assert (error.line, error.column) == (5, "timestamp")
    assert "an integer" in str(error)


def test_empty_file(latest):
    (latest / "ratings.csv").write_text("")
    error = _fails("ml-latest", latest)
    assert error.path.endswith("ratings.csv") and "file is empty" in str(error)


def test_header_without_rows(latest):
    (latest / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    error = _fails("ml-latest", latest)
    assert "no data rows" in str(error)


def test_wrong_delimiter_with_header(latest):
    path = latest / "ratings.csv"
    path.write_text(path.read_text().replace(",", "\t"))
    error = _fails("ml-latest", latest)
    assert error.line == 1 and "separated by tab" in str(error) and "comma" in str(error)


def test_wrong_delimiter_without_header(tmp_path, world):
    folder = WRITERS["ml-1m"](tmp_path / "ml1m", world)
    path = folder / "ratings.dat"
    path.write_text(path.read_text().replace("::", ","))
    error = _fails("ml-1m", folder)
    assert error.line == 1 and "separated by comma, not '::'" in str(error)


def test_short_row_in_the_middle(tmp_path, world):
    folder = WRITERS["ml-1m"](tmp_path / "ml1m", world)
    _rewrite_line(folder / "ratings.dat", 7, "1::2::4")
    error = _fails("ml-1m", folder)
    assert error.line == 7 and "4 fields" in str(error)


def test_empty_required_value(latest):
    _rewrite_line(latest / "ratings.csv", 4, "1,,4.0,1000300")
    error = _fails("ml-latest", latest)
    assert (error.line, error.column) == (4, "movieId") and "empty value" in str(error)


def test_duplicated_user_item_timestamp(latest):
    path = latest / "ratings.csv"
    lines = path.read_text().splitlines()
    lines.insert(6, lines[2])  # line 3 again as line 7
    path.write_text("\n".join(lines) + "\n")
    error = _fails("ml-latest", latest)
    assert error.line == 7 and "first seen on line 3" in str(error)


def test_file_of_another_format(tmp_path, world):
    # ML-1M format declared, but the folder holds ml-latest CSV files renamed to .dat.
    folder = WRITERS["ml-latest"](tmp_path / "wrong", world)
    (folder / "ratings.csv").rename(folder / "ratings.dat")
    error = _fails("ml-1m", folder)
    assert error.path.endswith("ratings.dat") and error.line == 1
    assert "'::'" in str(error)


def test_goodreads_file_that_is_not_json(tmp_path, world):
    folder = WRITERS["goodreads"](tmp_path / "gr", world)
    with gzip.open(folder / "goodreads_interactions_toy.json.gz", "wt") as stream:
        stream.write("user_id,book_id,rating\nu1,2,3\n")
    error = _fails("goodreads", folder)
    assert "is not JSON lines" in str(error)


def test_goodreads_bad_date(tmp_path, world):
    folder = WRITERS["goodreads"](tmp_path / "gr", world)
    path = folder / "goodreads_interactions_toy.json.gz"
    with gzip.open(path, "rt") as stream:
        lines = stream.read().splitlines()
    lines[1] = lines[1].replace('"date_added": "', '"date_added": "soon ')
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(lines) + "\n")
    error = _fails("goodreads", folder)
    assert (error.line, error.column) == (2, "date_added")
