"""Tests for tasks_app.processing: plain pytest, no database, no Django settings."""

import copy
import json

import pytest

from tasks_app.errors import PermanentTaskError
from tasks_app.processing import record_matches, run_processing, validate_where

PLAYERS = [
    {"name": "ann", "team": "red", "pts": 10, "age": 30},
    {"name": "bob", "team": "blue", "pts": 20, "age": 25},
    {"name": "cat", "team": "red", "pts": 30, "age": 35},
    {"name": "dan", "team": "blue", "pts": 5},
]


def players():
    """A fresh copy, so no test can leak changes into another."""
    return copy.deepcopy(PLAYERS)


def process(operation, input_data, output_format="json", **options):
    return run_processing(
        operation=operation,
        input_data=input_data,
        output_format=output_format,
        processing_options=options or None,
    )


def transform(records, *steps, output_format="json"):
    return process("transformation", records, output_format, steps=list(steps))["result"]


def aggregate(records, output_format="json", **options):
    return process("aggregation", records, output_format, **options)["result"]


def analyse(records, output_format="json", **options):
    return process("analysis", records, output_format, **options)["result"]


def error_of(call, *args, **kwargs):
    with pytest.raises(PermanentTaskError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# --- envelope and top-level validation ----------------------------------------------------------


def test_json_envelope_names_operation_format_and_result():
    envelope = run_processing(operation="analysis", input_data=[{"a": 1}])
    assert envelope == {
        "operation": "analysis",
        "output_format": "json",
        "result": {
            "record_count": 1,
            "fields": {"a": {"count": 1, "sum": 1, "mean": 1.0, "min": 1, "max": 1, "stddev": 0.0}},
        },
    }


def test_csv_envelope_carries_the_csv_text_as_result():
    envelope = run_processing(
        operation="transformation",
        input_data=[{"a": 1}],
        output_format="csv",
        processing_options={"steps": []},
    )
    assert envelope == {
        "operation": "transformation",
        "output_format": "csv",
        "result": "a\r\n1\r\n",
    }


@pytest.mark.parametrize("operation", ["analysis", "transformation", "aggregation"])
@pytest.mark.parametrize("output_format", ["json", "csv"])
def test_every_result_survives_strict_json_encoding(operation, output_format):
    options = {"steps": [{"op": "sort", "by": "pts"}]} if operation == "transformation" else None
    envelope = run_processing(
        operation=operation,
        input_data=players(),
        output_format=output_format,
        processing_options=options,
    )
    assert json.loads(json.dumps(envelope, allow_nan=False)) == envelope


def test_unknown_operation_is_rejected_with_the_choices():
    message = error_of(run_processing, operation="summarise", input_data=[])
    assert message == (
        "operation: unknown operation 'summarise'; use one of aggregation, analysis, transformation"
    )


def test_unknown_output_format_is_rejected_with_the_choices():
    message = error_of(run_processing, operation="analysis", input_data=[], output_format="xml")
    assert message == "output_format: unknown format 'xml'; use one of csv, json"


def test_processing_options_must_be_an_object():
    message = error_of(run_processing, operation="analysis", input_data=[], processing_options=["fields"])
    assert message == "processing_options: expected an object, got array"


def test_unknown_processing_option_is_rejected_instead_of_ignored():
    message = error_of(process, "transformation", [], step=[])
    assert message == "processing_options: unknown option 'step' for transformation; allowed: steps"


@pytest.mark.parametrize(
    ("input_data", "expected"),
    [
        ({"records": []}, "input_data: expected a list of objects, got object"),
        ("a,b", "input_data: expected a list of objects, got string"),
        (None, "input_data: expected a list of objects, got null"),
        ([{"a": 1}, [1, 2]], "input_data[1]: expected an object, got array"),
        ([{"a": 1}, 7], "input_data[1]: expected an object, got number"),
    ],
)
@pytest.mark.parametrize("operation", ["analysis", "transformation", "aggregation"])
def test_input_data_must_be_a_list_of_objects_for_every_operation(operation, input_data, expected):
    options = {"steps": []} if operation == "transformation" else None
    message = error_of(run_processing, operation=operation, input_data=input_data, processing_options=options)
    assert message == expected


@pytest.mark.parametrize(
    ("operation", "options"),
    [
        ("analysis", {"fields": ["pts"]}),
        (
            "transformation",
            {"steps": [{"op": "derive", "field": "x", "expression": {"mul": ["pts", 2]}}]},
        ),
        ("aggregation", {"group_by": "team", "metrics": {"pts": ["sum"]}}),
    ],
)
def test_input_records_are_never_modified(operation, options):
    records = players()
    run_processing(operation=operation, input_data=records, processing_options=options)
    assert records == PLAYERS


# --- analysis -----------------------------------------------------------------------------------


def test_analysis_reports_stats_for_every_numeric_field_in_first_seen_order():
    result = analyse(players())
    assert result["record_count"] == 4
    assert list(result["fields"]) == ["pts", "age"]
    assert result["fields"]["pts"] == {
        "count": 4,
        "sum": 65,
        "mean": 16.25,
        "min": 5,
        "max": 30,
        "stddev": pytest.approx(9.6014, abs=1e-4),
    }
    assert result["fields"]["age"] == {
        "count": 3,
        "sum": 90,
        "mean": 30.0,
        "min": 25,
        "max": 35,
        "stddev": pytest.approx(4.0825, abs=1e-4),
    }


def test_analysis_uses_population_standard_deviation():
    result = analyse([{"x": 2}, {"x": 4}, {"x": 4}, {"x": 4}, {"x": 5}, {"x": 5}, {"x": 7}, {"x": 9}])
    assert result["fields"]["x"]["stddev"] == 2.0


def test_analysis_ignores_bools_strings_nulls_and_missing_values():
    records = [
        {"x": 1, "flag": True, "label": "a"},
        {"x": True, "flag": False},
        {"x": "3", "label": None},
        {"x": None},
        {},
        {"x": 5.5},
    ]
    result = analyse(records)
    assert result["record_count"] == 6
    assert list(result["fields"]) == ["x"]
    assert result["fields"]["x"]["count"] == 2
    assert result["fields"]["x"]["sum"] == 6.5
    assert result["fields"]["x"]["min"] == 1
    assert result["fields"]["x"]["max"] == 5.5


def test_analysis_counts_a_field_that_is_numeric_in_only_some_records():
    result = analyse([{"v": "n/a"}, {"v": 4}, {"v": "n/a"}])
    assert result["fields"] == {"v": {"count": 1, "sum": 4, "mean": 4.0, "min": 4, "max": 4, "stddev": 0.0}}


def test_analysis_keeps_integer_sums_exact_and_sums_floats_precisely():
    assert analyse([{"n": 2**60}, {"n": 1}])["fields"]["n"]["sum"] == 2**60 + 1
    assert analyse([{"f": 0.1}] * 10)["fields"]["f"]["sum"] == 1.0


def test_analysis_of_empty_input_reports_no_fields():
    assert analyse([]) == {"record_count": 0, "fields": {}}


def test_analysis_fields_option_restricts_and_orders_the_report():
    result = analyse(players(), fields=["age", "pts"])
    assert list(result["fields"]) == ["age", "pts"]


def test_analysis_fields_option_accepts_dotted_paths():
    records = [{"stats": {"pts": 4}}, {"stats": {"pts": 6}}]
    result = analyse(records, fields=["stats.pts"])
    assert result["fields"]["stats.pts"]["mean"] == 5.0


def test_analysis_rejects_a_named_field_without_numeric_values():
    message = error_of(analyse, players(), fields=["pts", "name"])
    assert message == "processing_options.fields: field 'name' has no numeric values"


def test_analysis_rejects_a_named_field_when_the_input_is_empty():
    message = error_of(analyse, [], fields=["pts"])
    assert message == "processing_options.fields: field 'pts' has no numeric values"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("pts", "processing_options.fields: expected a list of field names, got string"),
        ([], "processing_options.fields: must name at least one field"),
        (["pts", 3], "processing_options.fields[1]: expected a non-empty field name, got number 3"),
        (["pts", "pts"], "processing_options.fields: field 'pts' is listed more than once"),
    ],
)
def test_analysis_rejects_a_malformed_fields_option(fields, expected):
    assert error_of(analyse, players(), fields=fields) == expected


def test_analysis_as_csv_has_one_row_per_field_with_stats_as_columns():
    text = analyse([{"a": 1, "b": 2.5}, {"a": 3}], output_format="csv")
    assert text == ("field,count,sum,mean,min,max,stddev\r\na,2,4,2.0,1,3,1.0\r\nb,1,2.5,2.5,2.5,2.5,0.0\r\n")


def test_analysis_as_csv_of_empty_input_is_just_the_header():
    assert analyse([], output_format="csv") == "field,count,sum,mean,min,max,stddev\r\n"


# --- transformation: pipeline -------------------------------------------------------------------


def test_transformation_with_no_steps_returns_the_records_unchanged():
    assert transform(players()) == PLAYERS


def test_transformation_applies_steps_in_order():
    result = transform(
        players(),
        {"op": "filter", "where": {"team": "red"}},
        {"op": "derive", "field": "double", "expression": {"mul": ["pts", 2]}},
        {"op": "sort", "by": "double", "descending": True},
        {"op": "select", "fields": ["name", "double"]},
        {"op": "rename", "fields": {"double": "score"}},
        {"op": "limit", "count": 1},
    )
    assert result == [{"name": "cat", "score": 60}]


def test_transformation_requires_steps():
    message = error_of(process, "transformation", players())
    assert message == "processing_options.steps: is required for transformation"


def test_transformation_steps_must_be_a_list():
    message = error_of(process, "transformation", players(), steps={"op": "limit"})
    assert message == "processing_options.steps: expected a list of steps, got object"


def test_transformation_rejects_an_unknown_op_with_the_choices():
    message = error_of(transform, players(), {"op": "explode"})
    assert message == (
        "processing_options.steps[0].op: unknown transformation op 'explode'; "
        "use one of derive, filter, limit, rename, select, sort"
    )


def test_transformation_rejects_a_step_without_op():
    message = error_of(transform, players(), {"fields": ["a"]})
    assert message == (
        "processing_options.steps[0]: missing 'op'; use one of derive, filter, limit, rename, select, sort"
    )


def test_transformation_rejects_a_step_that_is_not_an_object():
    message = error_of(transform, players(), "select")
    assert message.startswith("processing_options.steps[0]: expected an object like")
    assert message.endswith("got string")


def test_transformation_rejects_a_misspelt_step_key():
    message = error_of(transform, players(), {"op": "sort", "by": "pts", "decending": True})
    assert message == (
        "processing_options.steps[0]: unknown key 'decending' for sort; allowed: op, by, descending"
    )


def test_transformation_rejects_a_step_missing_a_required_key():
    message = error_of(transform, players(), {"op": "limit", "count": 1}, {"op": "limit"})
    assert message == "processing_options.steps[1].count: is required for limit"


def test_transformation_validates_steps_even_when_the_input_is_empty():
    message = error_of(transform, [], {"op": "filter", "where": {"pts": {"bigger": 1}}})
    assert message.startswith("processing_options.steps[0].where.pts: unknown operator 'bigger'")


def test_transformation_as_csv_uses_the_union_of_keys_in_first_seen_order():
    records = [
        {"name": "ann", "pts": 10},
        {"name": "bob", "tags": ["x", "y"], "active": True},
        {"pts": None, "meta": {"k": 1}, "active": False, "name": 'say "hi", bob'},
    ]
    assert transform(records, output_format="csv") == (
        "name,pts,tags,active,meta\r\n"
        "ann,10,,,\r\n"
        'bob,,"[""x"", ""y""]",true,\r\n'
        '"say ""hi"", bob",,,false,"{""k"": 1}"\r\n'
    )


def test_transformation_as_csv_of_no_records_is_empty_text():
    assert transform([], output_format="csv") == ""


# --- transformation: select and rename ----------------------------------------------------------


def test_select_keeps_only_the_named_keys_in_the_named_order():
    result = transform(players(), {"op": "select", "fields": ["pts", "name"]})
    assert result[0] == {"pts": 10, "name": "ann"}
    assert list(result[0]) == ["pts", "name"]


def test_select_does_not_add_keys_a_record_lacks():
    result = transform(players(), {"op": "select", "fields": ["name", "age"]})
    assert result[3] == {"name": "dan"}


def test_select_rejects_an_empty_field_list():
    message = error_of(transform, players(), {"op": "select", "fields": []})
    assert message == "processing_options.steps[0].fields: must name at least one field"


def test_rename_renames_keys_in_place():
    result = transform([{"a": 1, "b": 2, "c": 3}], {"op": "rename", "fields": {"b": "beta"}})
    assert result == [{"a": 1, "beta": 2, "c": 3}]
    assert list(result[0]) == ["a", "beta", "c"]


def test_rename_ignores_records_without_the_key():
    result = transform([{"a": 1}], {"op": "rename", "fields": {"zzz": "y"}})
    assert result == [{"a": 1}]


def test_rename_onto_an_existing_key_replaces_its_value():
    result = transform([{"a": 1, "b": 2}], {"op": "rename", "fields": {"a": "b"}})
    assert result == [{"b": 1}]


def test_rename_keeps_an_existing_key_when_the_source_is_absent():
    result = transform([{"b": 2}], {"op": "rename", "fields": {"a": "b"}})
    assert result == [{"b": 2}]


def test_rename_can_swap_two_keys():
    result = transform([{"a": 1, "b": 2}], {"op": "rename", "fields": {"a": "b", "b": "a"}})
    assert result == [{"b": 1, "a": 2}]


def test_rename_rejects_two_keys_renamed_to_one_name():
    message = error_of(transform, players(), {"op": "rename", "fields": {"a": "x", "b": "x"}})
    assert message == "processing_options.steps[0].fields: more than one field is renamed to 'x'"


@pytest.mark.parametrize("fields", [{}, ["a"], "a"])
def test_rename_rejects_a_mapping_that_is_not_a_non_empty_object(fields):
    message = error_of(transform, players(), {"op": "rename", "fields": fields})
    assert message == ('processing_options.steps[0].fields: expected a non-empty object like {"old": "new"}')


def test_rename_rejects_a_non_string_new_name():
    message = error_of(transform, players(), {"op": "rename", "fields": {"a": 5}})
    assert message == ("processing_options.steps[0].fields.a: expected a non-empty field name, got number 5")


# --- transformation: filter ---------------------------------------------------------------------


def test_filter_keeps_only_matching_records():
    result = transform(players(), {"op": "filter", "where": {"team": "blue", "pts": {"gt": 5}}})
    assert [r["name"] for r in result] == ["bob"]


def test_filter_with_empty_where_keeps_everything():
    assert transform(players(), {"op": "filter", "where": {}}) == PLAYERS


def test_filter_rejects_a_where_that_is_not_an_object():
    message = error_of(transform, players(), {"op": "filter", "where": ["team"]})
    assert message == ("processing_options.steps[0].where: expected an object of field conditions, got array")


# --- transformation: derive ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"add": ["a", "b"]}, 8),
        ({"sub": ["a", "b"]}, 4),
        ({"mul": ["a", 2.5]}, 15.0),
        ({"div": ["a", "b"]}, 3.0),
        ({"div": [1, "b"]}, 0.5),
        ({"mul": [{"add": ["a", "b"]}, {"sub": [10, "b"]}]}, 64),
    ],
)
def test_derive_computes_arithmetic_from_fields_numbers_and_nested_expressions(expression, expected):
    result = transform([{"a": 6, "b": 2}], {"op": "derive", "field": "x", "expression": expression})
    assert result == [{"a": 6, "b": 2, "x": expected}]


def test_derive_reads_dotted_paths():
    result = transform(
        [{"price": {"net": 10, "tax": 2}}],
        {"op": "derive", "field": "gross", "expression": {"add": ["price.net", "price.tax"]}},
    )
    assert result[0]["gross"] == 12


def test_derive_overwrites_an_existing_field_in_place():
    result = transform([{"a": 1, "b": 2}], {"op": "derive", "field": "a", "expression": {"add": ["a", 1]}})
    assert result == [{"a": 2, "b": 2}]
    assert list(result[0]) == ["a", "b"]


def test_derive_division_by_zero_gives_null():
    result = transform(
        [{"a": 1, "b": 0}, {"a": 1, "b": 0.0}],
        {"op": "derive", "field": "x", "expression": {"div": ["a", "b"]}},
    )
    assert [r["x"] for r in result] == [None, None]


def test_derive_overflow_gives_null_rather_than_infinity():
    result = transform([{"a": 1e308}], {"op": "derive", "field": "x", "expression": {"mul": ["a", 10]}})
    assert result[0]["x"] is None


def test_derive_with_a_missing_or_null_operand_gives_null():
    result = transform(
        [{"a": 1}, {"a": 1, "b": None}],
        {"op": "derive", "field": "x", "expression": {"add": ["a", {"mul": ["b", 2]}]}},
    )
    assert [r["x"] for r in result] == [None, None]


@pytest.mark.parametrize(("value", "shown"), [("7", "string '7'"), (True, "boolean True")])
def test_derive_rejects_a_non_numeric_operand_value(value, shown):
    message = error_of(
        transform,
        [{"a": 1, "b": 1}, {"a": 1, "b": value}],
        {"op": "derive", "field": "x", "expression": {"add": ["a", "b"]}},
    )
    assert message == (
        f"processing_options.steps[0].expression: field 'b' is {shown}, not a number (record 1 at this step)"
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            {"pow": ["a", 2]},
            "processing_options.steps[0].expression: unknown arithmetic operator 'pow'; "
            "use one of add, div, mul, sub",
        ),
        (
            "a + 1",
            "processing_options.steps[0].expression: expected an object with exactly one of "
            'add, div, mul, sub, e.g. {"add": ["a", 1]}',
        ),
        (
            {"add": ["a", 1], "sub": ["a", 1]},
            "processing_options.steps[0].expression: expected an object with exactly one of "
            'add, div, mul, sub, e.g. {"add": ["a", 1]}',
        ),
        (
            {"add": ["a", 1, 2]},
            "processing_options.steps[0].expression.add: expected a list of exactly two operands",
        ),
        (
            {"add": ["a", True]},
            "processing_options.steps[0].expression.add[1]: "
            "expected a field name, a number or a nested expression, got boolean",
        ),
        (
            {"add": ["a", {"mod": ["a", 2]}]},
            "processing_options.steps[0].expression.add[1]: unknown arithmetic operator 'mod'; "
            "use one of add, div, mul, sub",
        ),
        (
            {"add": ["", 1]},
            "processing_options.steps[0].expression.add[0]: expected a non-empty field name, got string ''",
        ),
    ],
)
def test_derive_rejects_malformed_expressions(expression, expected):
    message = error_of(transform, players(), {"op": "derive", "field": "x", "expression": expression})
    assert message == expected


def test_derive_never_evaluates_strings_as_code():
    # A string operand is only ever a field name: this one simply does not exist.
    result = transform(
        [{"a": 1}],
        {"op": "derive", "field": "x", "expression": {"add": ["__import__('os')", 1]}},
    )
    assert result == [{"a": 1, "x": None}]


def test_derive_rejects_an_empty_target_field():
    message = error_of(transform, players(), {"op": "derive", "field": "", "expression": {"add": [1, 1]}})
    assert message == ("processing_options.steps[0].field: expected a non-empty field name, got string ''")


# --- transformation: sort and limit -------------------------------------------------------------


def test_sort_orders_records_ascending_by_default():
    result = transform(players(), {"op": "sort", "by": "pts"})
    assert [r["pts"] for r in result] == [5, 10, 20, 30]


def test_sort_descending_reverses_the_order():
    result = transform(players(), {"op": "sort", "by": "pts", "descending": True})
    assert [r["pts"] for r in result] == [30, 20, 10, 5]


@pytest.mark.parametrize("descending", [False, True])
def test_sort_puts_missing_and_null_values_last_in_both_directions(descending):
    records = [{"id": 1}, {"id": 2, "v": 2}, {"id": 3, "v": None}, {"id": 4, "v": 1}]
    result = transform(records, {"op": "sort", "by": "v", "descending": descending})
    expected_present = [4, 2] if not descending else [2, 4]
    assert [r["id"] for r in result] == [*expected_present, 1, 3]


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_for_equal_values(descending):
    records = [{"id": i, "v": i % 2} for i in range(6)]
    result = transform(records, {"op": "sort", "by": "v", "descending": descending})
    evens, odds = [0, 2, 4], [1, 3, 5]
    assert [r["id"] for r in result] == (evens + odds if not descending else odds + evens)


def test_sort_orders_mixed_types_without_failing():
    records = [{"v": "b"}, {"v": True}, {"v": 2}, {"v": [1]}, {"v": "a"}, {"v": 1.5}]
    result = transform(records, {"op": "sort", "by": "v"})
    assert [r["v"] for r in result] == [1.5, 2, "a", "b", True, [1]]


def test_sort_reads_dotted_paths():
    records = [{"u": {"age": 40}}, {"u": {"age": 20}}]
    result = transform(records, {"op": "sort", "by": "u.age"})
    assert [r["u"]["age"] for r in result] == [20, 40]


def test_sort_rejects_a_non_boolean_descending():
    message = error_of(transform, players(), {"op": "sort", "by": "pts", "descending": "yes"})
    assert message == "processing_options.steps[0].descending: expected true or false, got string"


def test_limit_keeps_the_first_records():
    assert transform(players(), {"op": "limit", "count": 2}) == PLAYERS[:2]
    assert transform(players(), {"op": "limit", "count": 0}) == []
    assert transform(players(), {"op": "limit", "count": 99}) == PLAYERS


@pytest.mark.parametrize("count", [-1, 1.5, "3", True, None])
def test_limit_rejects_anything_but_a_non_negative_integer(count):
    message = error_of(transform, players(), {"op": "limit", "count": count})
    assert message == f"processing_options.steps[0].count: expected an integer >= 0, got {count!r}"


# --- record_matches -----------------------------------------------------------------------------


RECORD = {
    "status": "open",
    "age": 30,
    "score": 7.5,
    "tags": ["urgent", "billing"],
    "title": "Printer on fire",
    "active": True,
    "deleted_at": None,
    "user": {"team": "red", "address": {"city": "Oslo"}},
    "a.b": "literal",
}


@pytest.mark.parametrize(
    "where",
    [
        {},
        {"status": "open"},
        {"status": "open", "age": 30},
        {"age": 30.0},
        {"active": True},
        {"deleted_at": None},
        {"tags": ["urgent", "billing"]},
        {"status": {"eq": "open"}},
        {"user": {"eq": {"team": "red", "address": {"city": "Oslo"}}}},
        {"status": {"ne": "closed"}},
        {"missing": {"ne": "x"}},
        {"age": {"gt": 29}},
        {"age": {"gte": 30}},
        {"age": {"lt": 31, "gt": 29}},
        {"score": {"lte": 7.5}},
        {"status": {"gt": "close"}},
        {"status": {"in": ["open", "new"]}},
        {"tags": {"contains": "urgent"}},
        {"title": {"contains": "on fire"}},
        {"deleted_at": {"exists": True}},
        {"missing": {"exists": False}},
        {"user.team": "red"},
        {"user.address.city": {"in": ["Oslo"]}},
        {"a.b": "literal"},
    ],
)
def test_record_matches_conditions_that_hold(where):
    assert record_matches(RECORD, where) is True


@pytest.mark.parametrize(
    "where",
    [
        {"status": "closed"},
        {"status": "open", "age": 31},
        {"active": 1},
        {"age": True},
        {"tags": ["urgent"]},
        {"deleted_at": {"exists": False}},
        {"missing": None},
        {"missing": {"eq": None}},
        {"missing": {"exists": True}},
        {"missing": {"gt": 0}},
        {"missing": {"in": [None]}},
        {"status": {"ne": "open"}},
        {"age": {"gt": 30}},
        {"age": {"lt": 30}},
        {"age": {"gt": "1"}},
        {"status": {"gt": 1}},
        {"active": {"gte": 0}},
        {"status": {"in": ["new", "closed"]}},
        {"active": {"in": [1]}},
        {"tags": {"contains": "urg"}},
        {"title": {"contains": 5}},
        {"age": {"contains": 3}},
        {"user.team": "blue"},
        {"user.address.zip": {"exists": True}},
        {"status.x": {"exists": True}},
        {"age": {"gt": 10, "lt": 20}},
    ],
)
def test_record_matches_rejects_conditions_that_fail(where):
    assert record_matches(RECORD, where) is False


def test_record_matches_treats_true_and_one_as_different_inside_arrays():
    assert record_matches({"v": [1, True]}, {"v": [1, True]}) is True
    assert record_matches({"v": [1, 1]}, {"v": [1, True]}) is False


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (
            {"age": {"gtt": 3}},
            "where.age: unknown operator 'gtt'; use one of contains, eq, exists, gt, gte, in, lt, lte, ne",
        ),
        ({"age": {}}, 'where.age: empty condition; to compare with an empty object use {"eq": {}}'),
        ({"age": {"in": 3}}, "where.age.in: expected a list of values, got number"),
        ({"age": {"gt": None}}, "where.age.gt: expected a number or a string, got null"),
        ({"age": {"lte": [1]}}, "where.age.lte: expected a number or a string, got array"),
        ({"age": {"gt": True}}, "where.age.gt: expected a number or a string, got boolean"),
        ({"age": {"exists": "yes"}}, "where.age.exists: expected true or false, got string"),
        (["age"], "where: expected an object of field conditions, got array"),
        ({"": 1}, "where: field names must be non-empty strings, got ''"),
    ],
)
def test_record_matches_raises_on_an_invalid_condition(where, expected):
    assert error_of(record_matches, RECORD, where) == expected


def test_record_matches_validates_the_condition_even_when_it_would_not_be_reached():
    # The first clause fails, but the malformed second one must still be reported.
    message = error_of(record_matches, RECORD, {"status": "closed", "age": {"between": [1, 2]}})
    assert message.startswith("where.age: unknown operator 'between'")


def test_record_matches_uses_the_given_context_in_error_messages():
    message = error_of(record_matches, RECORD, {"age": {"gtt": 1}}, context="filters[2].where")
    assert message.startswith("filters[2].where.age: unknown operator 'gtt'")


def test_record_matches_rejects_a_record_that_is_not_an_object():
    assert error_of(record_matches, ["a"], {}) == "record: expected an object, got array"


def test_validate_where_accepts_a_good_condition_and_reports_a_bad_one():
    validate_where({"age": {"gte": 18}, "tags": {"contains": "x"}})
    message = error_of(validate_where, {"age": {"gte": 18, "like": "x"}}, context="poll.filter")
    assert message.startswith("poll.filter.age: unknown operator 'like'")


# --- aggregation --------------------------------------------------------------------------------


def test_aggregation_groups_by_team_and_sums_points():
    result = aggregate(players(), group_by=["team"], metrics={"pts": ["sum", "avg"], "*": ["count"]})
    assert result == [
        {"team": "blue", "pts_sum": 25, "pts_avg": 12.5, "count": 2},
        {"team": "red", "pts_sum": 40, "pts_avg": 20.0, "count": 2},
    ]


def test_aggregation_computes_min_max_and_field_count():
    result = aggregate(players(), group_by="team", metrics={"age": ["count", "min", "max"]})
    assert result == [
        {"team": "blue", "age_count": 1, "age_min": 25, "age_max": 25},
        {"team": "red", "age_count": 2, "age_min": 30, "age_max": 35},
    ]


def test_aggregation_accepts_group_by_as_a_single_string():
    assert aggregate(players(), group_by="team") == aggregate(players(), group_by=["team"])


def test_aggregation_defaults_to_counting_records():
    assert aggregate(players(), group_by="team") == [
        {"team": "blue", "count": 2},
        {"team": "red", "count": 2},
    ]


def test_aggregation_with_empty_metrics_lists_distinct_groups():
    assert aggregate(players(), group_by="team", metrics={}) == [{"team": "blue"}, {"team": "red"}]


@pytest.mark.parametrize("group_by", [None, [], "absent"])
def test_aggregation_without_group_by_makes_one_group_of_everything(group_by):
    options = {"metrics": {"pts": ["sum", "max"], "*": ["count"]}}
    if group_by != "absent":
        options["group_by"] = group_by
    assert aggregate(players(), **options) == [{"pts_sum": 65, "pts_max": 30, "count": 4}]


def test_aggregation_of_empty_input_without_group_by_gives_one_row_of_empty_aggregates():
    result = aggregate([], metrics={"pts": ["sum", "avg", "min", "max", "count"], "*": ["count"]})
    assert result == [
        {
            "pts_sum": 0,
            "pts_avg": None,
            "pts_min": None,
            "pts_max": None,
            "pts_count": 0,
            "count": 0,
        }
    ]


def test_aggregation_of_empty_input_with_group_by_gives_no_rows():
    assert aggregate([], group_by="team", metrics={"pts": ["sum"]}) == []


def test_aggregation_groups_by_several_keys_sorted_by_all_of_them():
    records = [
        {"team": "red", "role": "b", "pts": 1},
        {"team": "blue", "role": "b", "pts": 2},
        {"team": "red", "role": "a", "pts": 3},
        {"team": "red", "role": "b", "pts": 4},
    ]
    result = aggregate(records, group_by=["team", "role"], metrics={"pts": ["sum"]})
    assert result == [
        {"team": "blue", "role": "b", "pts_sum": 2},
        {"team": "red", "role": "a", "pts_sum": 3},
        {"team": "red", "role": "b", "pts_sum": 5},
    ]


def test_aggregation_sorts_null_groups_last_and_mixed_types_safely():
    records = [{"k": None}, {"k": "x"}, {"k": 2}, {"k": True}, {"k": 1}, {"k": None}]
    result = aggregate(records, group_by="k")
    assert result == [
        {"k": 1, "count": 1},
        {"k": 2, "count": 1},
        {"k": "x", "count": 1},
        {"k": True, "count": 1},
        {"k": None, "count": 2},
    ]


def test_aggregation_keeps_true_and_one_apart_but_joins_one_and_one_point_zero():
    records = [{"k": 1}, {"k": True}, {"k": 1.0}]
    assert aggregate(records, group_by="k") == [{"k": 1, "count": 2}, {"k": True, "count": 1}]


def test_aggregation_groups_by_object_values():
    records = [{"k": {"a": 1, "b": 2}}, {"k": {"b": 2, "a": 1}}, {"k": [1]}]
    result = aggregate(records, group_by="k")
    assert result == [{"k": [1], "count": 1}, {"k": {"a": 1, "b": 2}, "count": 2}]


def test_aggregation_groups_by_dotted_paths():
    records = [{"user": {"team": "red"}, "pts": 1}, {"user": {"team": "red"}, "pts": 2}]
    result = aggregate(records, group_by="user.team", metrics={"pts": ["sum"]})
    assert result == [{"user.team": "red", "pts_sum": 3}]


def test_aggregation_skips_records_missing_the_metric_field():
    records = [
        {"team": "red", "pts": 4},
        {"team": "red"},
        {"team": "red", "pts": None},
        {"team": "red", "pts": 2},
    ]
    result = aggregate(records, group_by="team", metrics={"pts": ["count", "avg"], "*": ["count"]})
    assert result == [{"team": "red", "pts_count": 2, "pts_avg": 3.0, "count": 4}]


def test_aggregation_count_of_a_field_counts_non_numeric_values_too():
    records = [{"name": "a"}, {"name": True}, {"name": None}, {}]
    assert aggregate(records, metrics={"name": ["count"]}) == [{"name_count": 2}]


def test_aggregation_group_values_that_are_null_form_their_own_group():
    records = [{"team": None, "pts": 1}, {"team": "red", "pts": 2}]
    result = aggregate(records, group_by="team", metrics={"pts": ["sum"]})
    assert result == [{"team": "red", "pts_sum": 2}, {"team": None, "pts_sum": 1}]


def test_aggregation_rejects_a_record_missing_a_group_by_key():
    message = error_of(aggregate, players() + [{"pts": 1}], group_by=["team"])
    assert message == "input_data[4]: group_by field 'team' is missing"


@pytest.mark.parametrize("aggregate_name", ["sum", "avg", "min", "max"])
@pytest.mark.parametrize(("value", "shown"), [("12", "string '12'"), (False, "boolean False")])
def test_aggregation_rejects_a_non_numeric_value_for_a_numeric_aggregate(aggregate_name, value, shown):
    records = [{"pts": 1}, {"pts": value}]
    message = error_of(aggregate, records, metrics={"pts": [aggregate_name]})
    assert message == (f"input_data[1].pts: {shown} is not a number; {aggregate_name} needs numbers")


def test_aggregation_rejects_an_unknown_aggregate_with_the_choices():
    message = error_of(aggregate, players(), metrics={"pts": ["sum", "median"]})
    assert message == (
        "processing_options.metrics.pts: unknown aggregate 'median'; use one of avg, count, max, min, sum"
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"metrics": {"*": ["sum"]}},
            "processing_options.metrics.*: only 'count' applies to '*', not 'sum'",
        ),
        (
            {"metrics": {"pts": "sum"}},
            "processing_options.metrics.pts: expected a non-empty list of aggregates "
            "(avg, count, max, min, sum)",
        ),
        (
            {"metrics": {"pts": []}},
            "processing_options.metrics.pts: expected a non-empty list of aggregates "
            "(avg, count, max, min, sum)",
        ),
        (
            {"metrics": {"pts": ["sum", "sum"]}},
            "processing_options.metrics.pts: aggregate 'sum' is listed more than once",
        ),
        (
            {"metrics": ["pts"]},
            'processing_options.metrics: expected an object like {"pts": ["sum"]}, got array',
        ),
        (
            {"group_by": 3},
            "processing_options.group_by: expected a field name or a list of them, got number",
        ),
        (
            {"group_by": ["team", "team"]},
            "processing_options.group_by: field 'team' is listed more than once",
        ),
        (
            {"group_by": "count"},
            "processing_options.metrics: column 'count' clashes with a group_by field",
        ),
    ],
)
def test_aggregation_rejects_malformed_options(options, expected):
    assert error_of(aggregate, players(), **options) == expected


def test_aggregation_validates_options_even_when_the_input_is_empty():
    message = error_of(aggregate, [], metrics={"pts": ["median"]})
    assert message.startswith("processing_options.metrics.pts: unknown aggregate 'median'")


def test_aggregation_as_csv_has_group_columns_then_metric_columns():
    text = aggregate(
        players(),
        output_format="csv",
        group_by="team",
        metrics={"pts": ["sum", "avg"], "age": ["min"], "*": ["count"]},
    )
    assert text == ("team,pts_sum,pts_avg,age_min,count\r\nblue,25,12.5,25,2\r\nred,40,20.0,30,2\r\n")


def test_aggregation_as_csv_writes_the_header_even_without_rows():
    text = aggregate([], output_format="csv", group_by="team", metrics={"pts": ["sum"]})
    assert text == "team,pts_sum\r\n"


def test_aggregation_as_csv_leaves_null_cells_empty():
    text = aggregate([{"k": None, "v": "x"}], output_format="csv", group_by="k")
    assert text == "k,count\r\n,1\r\n"


# --- numbers too large for floats, and long values in messages ----------------------------------


def test_analysis_rejects_integers_too_large_to_summarise():
    message = error_of(analyse, [{"n": 10**400}])
    assert message == "input_data (field 'n'): numbers too large to summarise"


def test_aggregation_rejects_integers_too_large_to_average():
    message = error_of(aggregate, [{"n": 10**400}], metrics={"n": ["avg"]})
    assert message == "input_data (field 'n'): numbers too large to average"


def test_aggregation_still_sums_integers_too_large_for_floats_exactly():
    assert aggregate([{"n": 10**400}, {"n": 1}], metrics={"n": ["sum"]}) == [{"n_sum": 10**400 + 1}]


def test_derive_result_too_large_for_a_float_gives_null():
    result = transform([{"n": 10**400}], {"op": "derive", "field": "x", "expression": {"div": ["n", 3]}})
    assert result[0]["x"] is None


def test_error_messages_shorten_long_data_values():
    message = error_of(aggregate, [{"n": "x" * 500}], metrics={"n": ["sum"]})
    assert message == (f"input_data[0].n: string '{'x' * 56}... is not a number; sum needs numbers")
