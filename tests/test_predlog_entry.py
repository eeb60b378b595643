"""predlog/entry.py: what a logged answer becomes."""

import orjson

from predlog.entry import Entry, api_key_id, material_key, to_row

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
    row = to_row(entry)
    assert orjson.loads(row.outputs) == {"density": [3.2, 3.1, 3.3], "vickers_hardness": [25.0, None, None]}
    assert (row.n_warnings, row.cached, row.model_tag, row.latency_ms) == (1, True, "armor_mechanical:v1", 2.5)
    assert orjson.loads(row.material) == {"composition": {"SiC": 1.0}}


def test_hardness_answers_are_one_output_per_load():
    body = {
        "predictions": [
            {"load_n": 0.49, "vickers_hardness": {"value": 30.0, "confidence_interval": [28.0, 32.0]}},
            {"load_n": 9.8, "vickers_hardness": {"value": 26.0, "confidence_interval": [24.0, 28.0]}},
        ],
        "warnings": [],
    }
    row = to_row(Entry(1.0, "hardness", "single", {"formula": "B4C"}, "t", body, False, None))
    assert orjson.loads(row.outputs) == {
        "vickers_hardness@0.49 N": [30.0, 28.0, 32.0],
        "vickers_hardness@9.8 N": [26.0, 24.0, 28.0],
    }


def test_the_material_key_ignores_key_order_and_the_key_id_is_not_the_key():
    assert material_key("mechanical", {"a": 1, "b": 2}) == material_key("mechanical", {"b": 2, "a": 1})
    assert material_key("mechanical", {"a": 1}) != material_key("ballistic", {"a": 1})
    key_id = api_key_id(b"secret-key")
    assert len(key_id) == 12 and "secret" not in key_id and key_id == api_key_id(b"secret-key")


def test_a_row_is_the_insert_statements_columns_in_order():
    from predlog.entry import COLUMNS, Row

    assert Row._fields == COLUMNS


def test_answers_under_one_response_key_are_converted_once():
    from predlog.entry import RowMaker

    maker = RowMaker()
    first = Entry(1.0, "mechanical", "single", {"m": 1}, "t", orjson.dumps(BODY), False, 2.0, key="k")
    again = Entry(2.0, "mechanical", "single", {"m": 1}, "t", b"not parsed again", True, 0.1, key="k")
    one, two = maker.row(first), maker.row(again)
    assert two.outputs == one.outputs and two.material == one.material and (two.ts, two.cached) == (2.0, True)


def test_a_repeat_whose_columns_were_forgotten_is_not_written_half():
    from predlog.entry import RowMaker

    maker = RowMaker(memo_keys=1)
    maker.row(Entry(1.0, "mechanical", "single", {"m": 1}, "t", orjson.dumps(BODY), False, 1.0, key="a"))
    assert maker.knows("a")
    for key in ("b", "c"):  # two generations of new keys
        maker.row(Entry(1.0, "mechanical", "single", {"m": key}, "t", orjson.dumps(BODY), False, 1.0, key=key))
    assert not maker.knows("a")
    assert maker.row(Entry(2.0, "mechanical", "single", None, "t", b"", True, 1.0, key="a")) is None
