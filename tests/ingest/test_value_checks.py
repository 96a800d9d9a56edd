"""Values are checked at read time: integers, the rating scale and timestamps, naming the line."""

from __future__ import annotations

import math

import pytest

from reclora_pipeline.errors import ParameterError
from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.readers import read_dataset
from reclora_pipeline.ingest.settings import IngestSettings
from reclora_pipeline.ingest.value_checks import parse_rating_scale
from reclora_pipeline.pipelines.ingest.nodes import read_raw_tables
from reclora_pipeline.typed_settings import parse
from tests.sources import WRITERS, replace_line

RATINGS_FILE = {
    "recbole": "toy.inter",
    "ml-100k": "u.data",
    "ml-1m": "ratings.dat",
    "ml-latest": "ratings.csv",
    "goodreads": "goodreads_interactions_toy.json.gz",
}
HEADER_LINES = {"recbole": 1, "ml-latest": 1}
DELIMITERS = {"recbole": "\t", "ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}
ID_COLUMNS = {
    "recbole": ("user_id:token", "item_id:token"),
    "ml-latest": ("userId", "movieId"),
}
RATING_COLUMN = {"recbole": "rating:float"}
TIME_COLUMN = {"recbole": "timestamp:float", "goodreads": "date_added"}


def _line_of(data_format: str, index: int) -> int:
    """File line of ``world.ratings[index]``."""
    return index + 1 + HEADER_LINES.get(data_format, 0)


def _fails(data_format, folder, **options) -> InputDataError:
    with pytest.raises(InputDataError) as caught:
        read_dataset(data_format, folder, **options)
    return caught.value


def _write_with(tmp_path, world, data_format, index, *, rating=None, timestamp=None):
    user, item, old_rating, old_timestamp = world.ratings[index]
    world.ratings[index] = (
        user,
        item,
        old_rating if rating is None else rating,
        old_timestamp if timestamp is None else timestamp,
    )
    return WRITERS[data_format](tmp_path / data_format, world)


def test_rating_outside_the_scale_names_file_line_column_and_scale(tmp_path, world):
    folder = _write_with(tmp_path, world, "ml-latest", 1, rating=99.0)
    error = _fails("ml-latest", folder)
    assert str(error).endswith(
        "ratings.csv, line 3, column 'rating': value 99.0 is outside the rating scale "
        "(expected a number from 0.5 to 5)"
    )


@pytest.mark.parametrize(
    ("data_format", "rating", "scale"),
    [
        ("ml-latest", -1.0, "0.5 to 5"),
        ("ml-latest", 0.0, "0.5 to 5"),
        ("ml-latest", 5.5, "0.5 to 5"),
        ("ml-latest", math.inf, "0.5 to 5"),
        ("ml-1m", 0.5, "1 to 5"),
        ("ml-1m", 6.0, "1 to 5"),
        ("ml-100k", 0.0, "1 to 5"),
        ("recbole", -1.0, "0 to 5"),
        ("recbole", 5.5, "0 to 5"),
        ("goodreads", -1.0, "0 to 5"),
        ("goodreads", 6.0, "0 to 5"),
    ],
)
def test_each_format_checks_its_own_rating_scale(tmp_path, world, data_format, rating, scale):
    folder = _write_with(tmp_path, world, data_format, 4, rating=rating)
    error = _fails(data_format, folder)
    assert error.path.endswith(RATINGS_FILE[data_format])
    assert (error.line, error.column) == (
        _line_of(data_format, 4),
        RATING_COLUMN.get(data_format, "rating"),
    )
    assert "is outside the rating scale" in str(error)
    assert f"(expected a number from {scale})" in str(error)


@pytest.mark.parametrize("data_format", ["recbole", "ml-100k", "ml-1m", "ml-latest"])
def test_nan_rating_is_refused(tmp_path, world, data_format):
    folder = _write_with(tmp_path, world, data_format, 2, rating=math.nan)
    error = _fails(data_format, folder)
    assert error.line == _line_of(data_format, 2)
    assert "value nan is not a number" in str(error)


def test_non_numeric_rating_keeps_its_message(tmp_path, world):
    folder = WRITERS["ml-latest"](tmp_path / "latest", world)
    replace_line(folder / "ratings.csv", 3, "1,2,four,1000300")
    assert "ratings.csv, line 3, column 'rating': value 'four' is not a number" in str(
        _fails("ml-latest", folder)
    )


def test_goodreads_checks_ratings_before_dropping_unrated_rows(tmp_path, world):
    world.ratings[0] = (*world.ratings[0][:2], 0.0, world.ratings[0][3])
    folder = _write_with(tmp_path, world, "goodreads", 2, rating=6.0)
    error = _fails("goodreads", folder)
    assert (error.line, error.column) == (3, "rating")
    assert "value 6.0 is outside the rating scale" in str(error)


@pytest.mark.parametrize("data_format", sorted(RATINGS_FILE))
def test_negative_timestamp_is_refused(tmp_path, world, data_format):
    folder = _write_with(tmp_path, world, data_format, 3, timestamp=-5)
    error = _fails(data_format, folder)
    assert error.path.endswith(RATINGS_FILE[data_format])
    assert (error.line, error.column) == (
        _line_of(data_format, 3),
        TIME_COLUMN.get(data_format, "timestamp"),
    )
    expected = "before 1970" if data_format == "goodreads" else "is not a valid timestamp"
    assert expected in str(error)


@pytest.mark.parametrize("data_format", ["recbole", "ml-100k", "ml-1m", "ml-latest"])
@pytest.mark.parametrize(("position", "value"), [(0, "1.5"), (1, "1e3"), (0, "0x10"), (1, "1_0")])
def test_ids_must_be_written_as_integers(tmp_path, world, data_format, position, value):
    folder = WRITERS[data_format](tmp_path / data_format, world)
    fields = ["1", "2", "4", "1000300"]
    fields[position] = value
    line = _line_of(data_format, 5)
    replace_line(folder / RATINGS_FILE[data_format], line, DELIMITERS[data_format].join(fields))
    error = _fails(data_format, folder)
    assert (error.line, error.column) == (
        line,
        ID_COLUMNS.get(data_format, ("user_id", "item_id"))[position],
    )
    assert f"value {value!r} is not an integer" in str(error)


@pytest.mark.parametrize("data_format", ["ml-100k", "ml-1m", "ml-latest"])
def test_timestamps_must_be_written_as_integers(tmp_path, world, data_format):
    folder = WRITERS[data_format](tmp_path / data_format, world)
    line = _line_of(data_format, 2)
    fields = ["1", "2", "4", "1.0003e6"]
    replace_line(folder / RATINGS_FILE[data_format], line, DELIMITERS[data_format].join(fields))
    error = _fails(data_format, folder)
    assert (error.line, error.column) == (line, "timestamp")
    assert "value '1.0003e6' is not an integer" in str(error)


def test_ages_and_item_ids_of_side_files_must_be_integers(tmp_path, world):
    folder = WRITERS["ml-1m"](tmp_path / "ml1m", world)
    replace_line(folder / "users.dat", 2, "2::F::20.5::artist::10002")
    error = _fails("ml-1m", folder)
    assert error.path.endswith("users.dat")
    assert (error.line, error.column) == (2, "age") and "'20.5' is not an integer" in str(error)

    folder = WRITERS["recbole"](tmp_path / "recbole", world)
    replace_line(folder / "toy.item", 4, "3.0\tMovie 3\t1993\tAction")
    error = _fails("recbole", folder)
    assert (error.line, error.column) == (4, "item_id:token")


def test_integers_may_carry_a_sign_and_spaces(tmp_path, world):
    folder = WRITERS["ml-latest"](tmp_path / "latest", world)
    replace_line(folder / "ratings.csv", 2, " +77 , 2 ,4.0, 1000300 ")
    first = read_dataset("ml-latest", folder).interactions.slice(0, 1).to_pylist()
    assert first == [{"user_id": 77, "item_id": 2, "rating": 4.0, "timestamp": 1000300}]


def test_integer_too_large_for_an_id_is_refused(tmp_path, world):
    folder = WRITERS["ml-latest"](tmp_path / "latest", world)
    replace_line(folder / "ratings.csv", 4, "99999999999999999999,2,4.0,1000300")
    error = _fails("ml-latest", folder)
    assert (error.line, error.column) == (4, "userId") and "not an integer" in str(error)


def test_rating_scale_parameter_admits_another_scale(tmp_path, world):
    folder = _write_with(tmp_path, world, "recbole", 0, rating=8.0)
    assert "from 0 to 5" in str(_fails("recbole", folder))

    tables = read_dataset("recbole", folder, rating_scale=[0, 10])
    assert 8.0 in tables.interactions.column("rating").to_pylist()

    params = {"format": "recbole", "path": str(folder), "rating_scale": [0, 10]}
    settings = parse(IngestSettings, params, "ingest")
    assert settings.rating_scale == (0.0, 10.0)
    assert read_raw_tables(settings)[0].num_rows == len(world.ratings)


def test_rating_scale_parameter_can_narrow_the_scale(tmp_path, world):
    folder = _write_with(tmp_path, world, "ml-latest", 0, rating=0.5)
    error = _fails("ml-latest", folder, rating_scale=(1, 5))
    assert error.line == 2 and "(expected a number from 1 to 5)" in str(error)


@pytest.mark.parametrize(
    "value", [[5, 1], [3, 3], [1], [0, 5, 10], "0-10", [0, "10"], [True, 5], [0, math.inf], 5]
)
def test_rating_scale_parameter_is_validated(tmp_path, value):
    with pytest.raises(ParameterError, match=r"ingest\.rating_scale is .*\[min, max\]"):
        read_dataset("recbole", tmp_path, rating_scale=value)


def test_rating_scale_parameter_defaults_to_the_format_scale():
    assert parse_rating_scale(None) is None
    assert parse_rating_scale([0, 10]) == (0.0, 10.0)
