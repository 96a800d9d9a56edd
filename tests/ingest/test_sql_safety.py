"""Names from users' files cannot add SQL: RecBole headers are validated and identifiers quoted."""

from __future__ import annotations

import duckdb
import pytest

from reclora_pipeline.ingest.errors import InputDataError
from reclora_pipeline.ingest.readers import read_dataset
from reclora_pipeline.ingest.recbole_header import read_recbole_header
from reclora_pipeline.ingest.sql import sql_identifier
from tests.sources import WRITERS, replace_line


def test_injected_recbole_header_is_refused_before_any_sql_runs(tmp_path, world):
    folder = WRITERS["recbole"](tmp_path / "recbole", world)
    target = tmp_path / "pwned.csv"
    field = (
        'movie_title:x" FROM (SELECT 1 AS "item_id:token", \'a\' AS "movie_title:x"); '
        f"COPY (SELECT 42 AS x) TO '{target}'; SELECT 1 AS \"z"
    )
    replace_line(folder / "toy.item", 1, f"item_id:token\t{field}")

    with pytest.raises(InputDataError) as caught:
        read_dataset("recbole", folder)

    assert not target.exists()
    error = caught.value
    assert error.path.endswith("toy.item") and error.line == 1
    assert "header field 'movie_title:x\" FROM" in str(error)
    assert f"({len(field)} characters)" in str(error)  # the long field is cut short
    assert "token, token_seq, float, float_seq" in str(error)


@pytest.mark.parametrize(
    "field",
    ["rating", "rating:number", "1rating:float", "movie title:token_seq", "rating:float:x", ""],
)
def test_recbole_header_field_must_be_name_colon_type(tmp_path, field):
    path = tmp_path / "toy.inter"
    path.write_text(f"user_id:token\t{field}\n1\t2\n")
    with pytest.raises(InputDataError) as caught:
        read_recbole_header(path)
    assert caught.value.line == 1
    assert f"header field {field!r} is not a RecBole 'name:type' field" in str(caught.value)


def test_recbole_header_accepts_every_recbole_type(tmp_path):
    path = tmp_path / "toy.item"
    path.write_text("item_id:token\tgenre:token_seq\t_price2:float\tvector:float_seq\n")
    assert read_recbole_header(path) == {
        "item_id": "item_id:token",
        "genre": "genre:token_seq",
        "_price2": "_price2:float",
        "vector": "vector:float_seq",
    }


@pytest.mark.parametrize("name", ['say "hi"', 'x" , 2 AS "y', '"', "a'b"])
def test_sql_identifier_keeps_the_name_literal(name):
    connection = duckdb.connect()
    result = connection.execute(f"SELECT 1 AS {sql_identifier(name)}")
    assert [column[0] for column in result.description] == [name]
    assert result.fetchall() == [(1,)]
