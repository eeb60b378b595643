"""predlog/entry.py: what a logged answer becomes."""

import numpy as np
import orjson

from predlog.entry import Entry, RowMaker, answer, api_key_id, columns, material_key

BODY = {
    "predictions": {
        "density": {"value": 3.2, "unit": "g/cm3", "confidence_interval": [3.1, 3.3]},
        "vickers_hardness": {"value": 25.0, "unit": "GPa", "confidence_interval": None},
    },
    "warnings": ["porosity outside the training range"],
    "model_info": {"version": "x"},
}


def test_a_rendered_answer_becomes_a_row_with_values_intervals_and_warnings():
    entry = Entry(
        1.0, "mechanical", "single", {"composition": {"SiC": 1.0}}, "armor_mechanical:v1", orjson.dumps(BODY), True, 2.5
    )
    made = RowMaker().made([entry])
    (row,), (found,) = made.rows, made.answers
    assert orjson.loads(found.outputs) == {"density": [3.2, 3.1, 3.3], "vickers_hardness": [25.0, None, None]}
    assert (found.n_warnings, found.model_tag) == (1, "armor_mechanical:v1")
    assert (row.answer_key, row.cached, row.latency_ms) == (found.answer_key, True, 2.5)
    assert orjson.loads(found.material) == {"composition": {"SiC": 1.0}}


def test_an_answer_logged_as_its_columns_is_the_answer_logged_as_rendered():
    """A computed answer's entry carries ``columns`` made from its body before rendering (numpy
    numbers as the runner gave them); the writer then stores exactly what it would have parsed."""
    computed = {
        "predictions": {
            "density": {"value": np.float64(3.2), "confidence_interval": [np.float64(3.1), np.float64(3.3)]},
            "vickers_hardness": {"value": np.float64(25.0), "confidence_interval": None},
        },
        "warnings": ["porosity outside the training range"],
        "model_info": {"version": "x"},
    }
    rendered = orjson.dumps(computed, option=orjson.OPT_SERIALIZE_NUMPY)
    material = {"composition": {"SiC": 1.0}}
    as_columns = Entry(1.0, "mechanical", "single", material, "m:v1", columns(computed), False, 2.5, key="k")
    as_rendered = as_columns._replace(body=rendered)
    assert answer(as_columns) == answer(as_rendered)
    assert orjson.loads(answer(as_columns).outputs)["vickers_hardness"] == [25.0, None, None]


def test_hardness_answers_are_one_output_per_load():
    body = {
        "predictions": [
            {"load_n": 0.49, "vickers_hardness": {"value": 30.0, "confidence_interval": [28.0, 32.0]}},
            {"load_n": 9.8, "vickers_hardness": {"value": 26.0, "confidence_interval": [24.0, 28.0]}},
        ],
        "warnings": [],
    }
    found = answer(Entry(1.0, "hardness", "single", {"formula": "B4C"}, "t", body, False, None))
    assert orjson.loads(found.outputs) == {
        "vickers_hardness@0.49 N": [30.0, 28.0, 32.0],
        "vickers_hardness@9.8 N": [26.0, 24.0, 28.0],
    }


def test_the_material_key_ignores_key_order_and_the_key_id_is_not_the_key():
    assert material_key("mechanical", {"a": 1, "b": 2}) == material_key("mechanical", {"b": 2, "a": 1})
    assert material_key("mechanical", {"a": 1}) != material_key("ballistic", {"a": 1})
    key_id = api_key_id(b"secret-key")
    assert len(key_id) == 12 and "secret" not in key_id and key_id == api_key_id(b"secret-key")


TABLES = ("predictions", "answers", "prediction_log")


def test_rows_and_answers_are_the_migrated_tables_columns_in_order(tmp_path):
    """The tuples the writer inserts and a reader gets are the columns of the SQLite file the
    migrations make (after each table's id): the field lists are the one source of the SQL."""
    import asyncio
    import sqlite3

    from predlog.entry import Answer, LoggedRow, Row
    from predlog.sqlite import SQLiteStore

    async def migrate():
        store = SQLiteStore(tmp_path / "log.sqlite3")
        await store.open()
        await store.close()

    asyncio.run(migrate())
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        names = {
            t: tuple(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in ("predictions", "prediction_log")
        }
        answers = tuple(r[1] for r in db.execute("PRAGMA table_info(answers)"))
    assert names["predictions"][1:] == Row._fields and answers == Answer._fields
    assert names["prediction_log"][1:] == LoggedRow._fields


def test_answers_under_one_response_key_are_converted_once():
    maker = RowMaker()
    first = Entry(1.0, "mechanical", "single", {"m": 1}, "t", orjson.dumps(BODY), False, 2.0, key="k")
    again = Entry(2.0, "mechanical", "single", None, "t", b"", True, 0.1, key="k")
    made = maker.made([first, again])
    one, two = made.rows
    assert len(made.answers) == 1 and one.answer_key == two.answer_key == made.answers[0].answer_key
    assert (two.ts, two.cached, two.latency_ms) == (2.0, True, 0.1)


def test_a_stored_answer_is_not_sent_again_until_it_is_forgotten():
    maker = RowMaker()
    entry = Entry(1.0, "mechanical", "single", {"m": 1}, "t", orjson.dumps(BODY), False, 2.0, key="k")
    first = maker.made([entry])
    assert len(first.answers) == 1 and maker.made([entry]).answers == first.answers  # not stored yet: again
    maker.stored(first.answers)
    assert maker.made([entry]).answers == []
    maker.forget_stored()
    assert maker.made([entry]).answers == first.answers


def test_an_answer_key_is_one_per_response_key_and_model_or_per_content_without_a_key():
    def key_of(tag: str, key: str | None, body: bytes = orjson.dumps(BODY)) -> str:
        return answer(Entry(1.0, "mechanical", "batch", {"m": 1}, tag, body, False, None, key=key)).answer_key

    assert key_of("t", "k") == key_of("t", "k") != key_of("u", "k")
    assert key_of("t", None) == key_of("t", None) != key_of("t", None, orjson.dumps({"warnings": ["x"]}))


def test_a_repeat_whose_columns_were_forgotten_is_not_written_half():
    maker = RowMaker(memo_keys=1)
    maker.made([Entry(1.0, "mechanical", "single", {"m": 1}, "t", orjson.dumps(BODY), False, 1.0, key="a")])
    assert maker.knows("a")
    for key in ("b", "c"):  # two generations of new keys
        maker.made([Entry(1.0, "mechanical", "single", {"m": key}, "t", orjson.dumps(BODY), False, 1.0, key=key)])
    assert not maker.knows("a")
    made = maker.made([Entry(2.0, "mechanical", "single", None, "t", b"", True, 1.0, key="a")])
    assert (made.rows, made.forgotten) == ([], 1)
