"""The "processing" task family: analyse, transform or aggregate a list of records.

Pure Python, standard library only, no Django: everything here is a function of
its arguments, so it can be tested and reused (e.g. by polling filters) anywhere.

Entry point
===========

``run_processing(*, operation, input_data, output_format="json", processing_options=None)``
takes the fields of a message's ``data`` and returns a JSON-serialisable envelope::

    {"operation": "analysis", "output_format": "json", "result": <json value>}
    {"operation": "analysis", "output_format": "csv", "result": "<csv text>"}

Anything invalid (an unknown operation, format, option, step or operator, a
malformed value, a record that cannot be processed as asked) raises
``tasks_app.errors.PermanentTaskError``: retrying the same message cannot help.
Every message starts with the path of the offending value, then says what is
wrong, e.g.::

    processing_options.metrics.pts: unknown aggregate 'median'; use one of avg, count, max, ...
    input_data[3]: expected an object, got string

Records
-------

For every operation ``input_data`` must be a JSON array of JSON objects (an
empty array is fine). A wrapper such as ``{"records": [...]}`` is rejected
rather than guessed at, so that producers get one unambiguous shape. Input
records are never modified.

Options are strict: an unknown key in ``processing_options`` or in a
transformation step is an error, so that a typo ("decending") fails loudly
instead of being silently ignored.

Field paths
-----------

Wherever a value is *read* from a record (analysis ``fields``, ``filter``
conditions, ``derive`` operands, ``sort`` ``by``, aggregation ``group_by`` and
``metrics``) the field name may be a dotted path: ``"user.team"`` reads
``record["user"]["team"]``. A record key that literally contains the dots
(``record["user.team"]``) takes precedence. Paths only walk through objects,
not into arrays. ``select``, ``rename`` and the ``derive`` target work on
top-level keys only.

Numbers
-------

A number is a JSON number: ``int`` or finite ``float``. Booleans are *not*
numbers (in Python ``True == 1``, in JSON they are different things), and
neither are numeric strings such as ``"12"``.

operation "analysis"
====================

Descriptive statistics over the numeric fields of the records::

    processing_options: {"fields": ["pts", "age"]}      # optional

Without ``fields``, every top-level key that holds a number in at least one
record is reported, in first-seen order; values that are not numbers (null,
strings, booleans, missing) are skipped, so ``count`` is the number of numeric
values. With ``fields``, only those fields are reported, in the given order,
and a named field with no numeric value at all is an error. JSON result::

    {"record_count": 3,
     "fields": {"pts": {"count": 3, "sum": 60, "mean": 20.0, "min": 10, "max": 30,
                        "stddev": 8.16496580927726}}}

``sum`` is an exact integer when all values are integers; ``mean`` and
``stddev`` are floats. ``stddev`` is the *population* standard deviation
(``statistics.pstdev``): it describes exactly the data given, and is defined
(0.0) for a single value. CSV result: one row per field, columns
``field,count,sum,mean,min,max,stddev`` (``record_count`` is only in JSON).

operation "transformation"
==========================

``processing_options: {"steps": [...]}`` (required; an empty list returns the
records unchanged). Steps run in order, each on the output of the previous
one. JSON result: the list of resulting records. The steps:

``{"op": "select", "fields": ["a", "b"]}``
    Keep only these keys, in this order. Keys a record lacks are not added.

``{"op": "rename", "fields": {"old": "new"}}``
    Rename keys; a renamed key keeps its position. If ``new`` already exists
    the renamed value replaces it. Two keys may not be renamed to one name.

``{"op": "filter", "where": {"status": "open", "age": {"gte": 18}}}``
    Keep the records matching every condition; see ``record_matches``.

``{"op": "derive", "field": "total", "expression": {"add": ["price", "tax"]}}``
    Set ``field`` to an arithmetic result. The expression is an object with
    exactly one of ``add``, ``sub``, ``mul``, ``div`` mapping to exactly two
    operands; an operand is a field path (string), a number, or a nested
    expression: ``{"mul": [{"add": ["a", "b"]}, 0.5]}``. No ``eval`` anywhere.
    If an operand field is missing or null the result is null (like SQL);
    division by zero, or a result too large to represent, is also null. An
    operand field holding a non-number (e.g. a string) is an error. ``div`` is
    true division (``6 / 3`` gives ``2.0``).

``{"op": "sort", "by": "pts", "descending": false}``
    Stable sort on one field (``descending`` is optional, default false).
    Mixed types order as numbers < strings < booleans < arrays/objects;
    records where the field is missing or null always come last.

``{"op": "limit", "count": 10}``
    Keep the first ``count`` records (``count`` is an integer >= 0).

CSV result: the resulting records (see "CSV" below).

operation "aggregation"
=======================

Group the records and compute aggregates per group::

    processing_options: {"group_by": ["team"],
                         "metrics": {"pts": ["sum", "avg"], "*": ["count"]}}

``group_by`` is a field path or a list of them; absent, null or ``[]`` means
one group of all records. Every record must have every ``group_by`` field
(null is a valid group value; a missing field is an error).

``metrics`` maps a field path to a list of aggregates: ``count``, ``sum``,
``avg``, ``min``, ``max``. ``"*"`` stands for the whole record and allows only
``count``. Absent ``metrics`` means ``{"*": ["count"]}``; ``{}`` gives just the
distinct group keys. For each metric, records where the field is missing or
null are skipped; a field ``count`` counts the remaining values (of any type);
the other aggregates need numbers, and any other value is an error. Over no
values ``sum`` is 0 and ``avg``/``min``/``max`` are null.

JSON result: one row (object) per group, sorted by the group values (null
last, mixed types as for ``sort``). A row holds the group fields under their
``group_by`` names, then one column per metric named ``<field>_<aggregate>``
(``pts_sum``, ``pts_avg``) except ``"*"``'s, which is plain ``count``::

    [{"team": "blue", "pts_sum": 30, "pts_avg": 15.0, "count": 2},
     {"team": "red", "pts_sum": 5, "pts_avg": 5.0, "count": 1}]

As in SQL, with no ``group_by`` there is always exactly one row, even for empty
input; with ``group_by`` and empty input there are no rows. CSV columns are the
group fields then the metric columns, written even when there are no rows.

CSV
===

Written with the ``csv`` module (RFC 4180: minimal quoting, CRLF line ends).
The header is the union of the rows' keys in first-seen order (aggregation and
analysis use their fixed columns). Cells: null or missing -> empty,
booleans -> ``true``/``false``, arrays and objects -> JSON text. No rows and no
columns -> ``""``.
"""

import csv
import io
import json
import math
import operator
import statistics
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from tasks_app.errors import PermanentTaskError

__all__ = [
    "AGGREGATES",
    "CONDITION_OPERATORS",
    "OPERATIONS",
    "OUTPUT_FORMATS",
    "TRANSFORMATION_OPS",
    "record_matches",
    "run_processing",
    "validate_where",
]

OPERATIONS = ("aggregation", "analysis", "transformation")
OUTPUT_FORMATS = ("csv", "json")
TRANSFORMATION_OPS = ("derive", "filter", "limit", "rename", "select", "sort")
AGGREGATES = ("avg", "count", "max", "min", "sum")
CONDITION_OPERATORS = ("contains", "eq", "exists", "gt", "gte", "in", "lt", "lte", "ne")
ARITHMETIC_OPERATORS = ("add", "div", "mul", "sub")
ANALYSIS_STATS = ("count", "sum", "mean", "min", "max", "stddev")

# Marks "the record has no such field", which is different from a null value.
_MISSING: Any = object()

Record = dict[str, Any]


# --- Errors and small value helpers -------------------------------------------------------------


def _fail(path: str, problem: str) -> NoReturn:
    raise PermanentTaskError(f"{path}: {problem}")


def _one_of(choices: tuple[str, ...] | list[str]) -> str:
    return ", ".join(choices)


def _json_type(value: Any) -> str:
    """Name a value's JSON type, for error messages written in the producer's terms."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short rendering of a data value for an error message (data can be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    # bool is a subclass of int, but true/false are not numbers in JSON; NaN and
    # infinities cannot be written as JSON, so they are not numbers here either.
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    """Read a (possibly dotted) field path; _MISSING when any step is absent."""
    if path in record:
        return record[path]
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _present(value: Any) -> bool:
    return value is not _MISSING and value is not None


def _json_equal(left: Any, right: Any) -> bool:
    """Equality with JSON semantics: unlike Python, true != 1 (also inside arrays/objects)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return left == right


def _sort_key(value: Any) -> tuple[int, Any]:
    """A total order over non-null JSON values, so mixed-type data never makes sort raise."""
    if _is_number(value):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, bool):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=repr))


def _field_names(value: Any, path: str) -> list[str]:
    """Validate a non-empty list of distinct, non-empty field names."""
    if not isinstance(value, list):
        _fail(path, f"expected a list of field names, got {_json_type(value)}")
    if not value:
        _fail(path, "must name at least one field")
    for index, name in enumerate(value):
        _field_name(name, f"{path}[{index}]")
    duplicates = sorted({name for name in value if value.count(name) > 1})
    if duplicates:
        _fail(path, f"field {duplicates[0]!r} is listed more than once")
    return list(value)


def _field_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, f"expected a non-empty field name, got {_json_type(value)} {_show(value)}")
    return value


# --- Conditions (filter step, and reused by polling filters) ------------------------------------

# One compiled condition: a field path and the (operator, operand) tests it must all pass.
_Clause = tuple[str, tuple[tuple[str, Any], ...]]


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    # Ordering only makes sense between two numbers or two strings; anything else
    # (e.g. a string field compared with a number) simply does not match.
    def compare(value: Any, operand: Any) -> bool:
        if _is_number(value) and _is_number(operand):
            return test(value, operand)
        if isinstance(value, str) and isinstance(operand, str):
            return test(value, operand)
        return False

    return compare


def _contains(value: Any, operand: Any) -> bool:
    if isinstance(value, str):
        return isinstance(operand, str) and operand in value
    if isinstance(value, list):
        return any(_json_equal(item, operand) for item in value)
    return False


# Tests applied to a field that is present (null counts as present). "exists" and
# missing fields are handled in _passes before these are consulted.
_CONDITION_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _json_equal,
    "ne": lambda value, operand: not _json_equal(value, operand),
    "gt": _compare(operator.gt),
    "gte": _compare(operator.ge),
    "lt": _compare(operator.lt),
    "lte": _compare(operator.le),
    "in": lambda value, operand: any(_json_equal(value, choice) for choice in operand),
    "contains": _contains,
}


def _check_operand(name: str, operand: Any, path: str) -> None:
    if name in ("gt", "gte", "lt", "lte") and not (_is_number(operand) or isinstance(operand, str)):
        _fail(path, f"expected a number or a string, got {_json_type(operand)}")
    if name == "in" and not isinstance(operand, list):
        _fail(path, f"expected a list of values, got {_json_type(operand)}")
    if name == "exists" and not isinstance(operand, bool):
        _fail(path, f"expected true or false, got {_json_type(operand)}")


def _compile_where(where: Any, context: str) -> list[_Clause]:
    """Validate a condition object once, so it can then be applied to many records."""
    if not isinstance(where, Mapping):
        _fail(context, f"expected an object of field conditions, got {_json_type(where)}")
    clauses: list[_Clause] = []
    for path, condition in where.items():
        if not isinstance(path, str) or not path:
            _fail(context, f"field names must be non-empty strings, got {_show(path)}")
        here = f"{context}.{path}"
        if not isinstance(condition, Mapping):
            # A plain value means equality; objects are always operator sets, so
            # comparing with an object literal needs an explicit {"eq": {...}}.
            clauses.append((path, (("eq", condition),)))
            continue
        if not condition:
            _fail(here, 'empty condition; to compare with an empty object use {"eq": {}}')
        tests = []
        for name, operand in condition.items():
            if name not in CONDITION_OPERATORS:
                _fail(
                    here,
                    f"unknown operator {_show(name)}; use one of {_one_of(CONDITION_OPERATORS)}",
                )
            _check_operand(name, operand, f"{here}.{name}")
            tests.append((name, operand))
        clauses.append((path, tuple(tests)))
    return clauses


def _passes(value: Any, name: str, operand: Any) -> bool:
    if name == "exists":
        return (value is not _MISSING) == operand
    if value is _MISSING:
        # A field that is not there equals nothing, so only "ne" holds (as in MongoDB).
        return name == "ne"
    return _CONDITION_TESTS[name](value, operand)


def _matches(record: Mapping[str, Any], clauses: list[_Clause]) -> bool:
    return all(
        _passes(_lookup(record, path), name, operand) for path, tests in clauses for name, operand in tests
    )


def validate_where(where: Any, *, context: str = "where") -> None:
    """Check a condition object without a record (e.g. when a filter is configured).

    Raises PermanentTaskError, with ``context`` as the path prefix of the
    message, exactly when ``record_matches`` would.
    """
    _compile_where(where, context)


def record_matches(record: Mapping[str, Any], where: Any, *, context: str = "where") -> bool:
    """Tell whether ``record`` satisfies every condition in ``where``.

    ``where`` maps a field path (dotted paths reach into nested objects, see the
    module docstring) to either a plain value, meaning equality, or an object of
    operators that must all hold::

        {"status": "open"}                              status == "open"
        {"age": {"gte": 18, "lt": 65}}                  18 <= age < 65
        {"user.team": {"in": ["red", "blue"]}}          nested field in a list
        {"tags": {"contains": "urgent"}}                array element / substring
        {"deleted_at": {"exists": false}}               field absent

    Operators:

    - ``eq`` / ``ne``: JSON equality (``true`` does not equal ``1``; ``1`` equals ``1.0``).
    - ``gt``, ``gte``, ``lt``, ``lte``: the operand must be a number or a string;
      a value of another type (or a string against a number) does not match.
    - ``in``: the operand must be an array; matches when the value equals an element.
    - ``contains``: a string value contains the operand as a substring, or an
      array value has an element equal to the operand; other values do not match.
    - ``exists``: the operand must be true/false; a field holding null exists.

    A missing field fails every operator except ``ne`` and ``exists: false``. A
    plain ``null`` matches an explicit null only. An empty ``where`` matches
    every record. An object value is always read as operators: to compare with
    an object, write ``{"eq": {...}}``.

    An invalid ``where`` (not an object, an unknown operator, a bad operand)
    raises PermanentTaskError whose message starts with ``context``, e.g.
    ``where.age: unknown operator 'gtt'; use one of contains, eq, ...``.
    """
    clauses = _compile_where(where, context)
    if not isinstance(record, Mapping):
        raise PermanentTaskError(f"record: expected an object, got {_json_type(record)}")
    return _matches(record, clauses)


# --- Input and options --------------------------------------------------------------------------


def _records(input_data: Any) -> list[Record]:
    if not isinstance(input_data, list):
        _fail("input_data", f"expected a list of objects, got {_json_type(input_data)}")
    for index, record in enumerate(input_data):
        if not isinstance(record, dict):
            _fail(f"input_data[{index}]", f"expected an object, got {_json_type(record)}")
    return input_data


def _options(processing_options: Any, operation: str, allowed: tuple[str, ...]) -> dict:
    if processing_options is None:
        return {}
    if not isinstance(processing_options, dict):
        _fail("processing_options", f"expected an object, got {_json_type(processing_options)}")
    for key in processing_options:
        if key not in allowed:
            _fail(
                "processing_options",
                f"unknown option {_show(key)} for {operation}; allowed: {_one_of(allowed)}",
            )
    return processing_options


# --- analysis -----------------------------------------------------------------------------------


def _numeric_columns(records: list[Record], fields: list[str] | None) -> dict[str, list]:
    """Collect the numeric values of each reported field, in report order."""
    if fields is None:
        columns: dict[str, list] = {}
        for record in records:
            for key, value in record.items():
                if _is_number(value):
                    columns.setdefault(key, []).append(value)
        return columns
    columns = {}
    for name in fields:
        values = [v for v in (_lookup(r, name) for r in records) if _is_number(v)]
        if not values:
            _fail("processing_options.fields", f"field {name!r} has no numeric values")
        columns[name] = values
    return columns


def _sum(values: list) -> int | float:
    # Keep integer sums exact; fsum avoids drift when adding many floats.
    if all(isinstance(v, int) for v in values):
        return sum(values)
    return math.fsum(values)


def _stats(name: str, values: list) -> dict[str, Any]:
    try:
        return {
            "count": len(values),
            "sum": _sum(values),
            "mean": statistics.fmean(values),
            "min": min(values),
            "max": max(values),
            "stddev": statistics.pstdev(values),
        }
    except OverflowError:
        _fail(f"input_data (field {name!r})", "numbers too large to summarise")


def _analyse(input_data: Any, options: dict) -> tuple[Any, list[Record], list[str]]:
    fields = None
    if "fields" in options:
        fields = _field_names(options["fields"], "processing_options.fields")
    records = _records(input_data)
    stats = {name: _stats(name, v) for name, v in _numeric_columns(records, fields).items()}
    result = {"record_count": len(records), "fields": stats}
    rows = [{"field": name, **field_stats} for name, field_stats in stats.items()]
    return result, rows, ["field", *ANALYSIS_STATS]


# --- transformation -----------------------------------------------------------------------------

_Step = Callable[[list[Record]], list[Record]]


def _build_select(step: dict, path: str) -> _Step:
    fields = _field_names(step["fields"], f"{path}.fields")

    def select(records: list[Record]) -> list[Record]:
        return [{f: record[f] for f in fields if f in record} for record in records]

    return select


def _build_rename(step: dict, path: str) -> _Step:
    mapping = step["fields"]
    if not isinstance(mapping, dict) or not mapping:
        _fail(f"{path}.fields", 'expected a non-empty object like {"old": "new"}')
    for old, new in mapping.items():
        _field_name(new, f"{path}.fields.{old}")
    targets = list(mapping.values())
    clashes = sorted({new for new in targets if targets.count(new) > 1})
    if clashes:
        _fail(f"{path}.fields", f"more than one field is renamed to {clashes[0]!r}")

    def rename_one(record: Record) -> Record:
        # Names being written by this rename replace any existing key of that name.
        written = {mapping[key] for key in record if key in mapping}
        renamed = {}
        for key, value in record.items():
            if key in mapping:
                renamed[mapping[key]] = value
            elif key not in written:
                renamed[key] = value
        return renamed

    return lambda records: [rename_one(record) for record in records]


def _build_filter(step: dict, path: str) -> _Step:
    clauses = _compile_where(step["where"], f"{path}.where")
    return lambda records: [record for record in records if _matches(record, clauses)]


def _check_expression(expression: Any, path: str) -> None:
    """Validate an arithmetic expression once, before any record is evaluated."""
    example = '{"add": ["a", 1]}'
    if not isinstance(expression, dict) or len(expression) != 1:
        _fail(path, f"expected an object with exactly one of add, div, mul, sub, e.g. {example}")
    ((name, operands),) = expression.items()
    if name not in ARITHMETIC_OPERATORS:
        _fail(path, f"unknown arithmetic operator {_show(name)}; use one of add, div, mul, sub")
    if not isinstance(operands, list) or len(operands) != 2:
        _fail(f"{path}.{name}", "expected a list of exactly two operands")
    for index, operand in enumerate(operands):
        here = f"{path}.{name}[{index}]"
        if isinstance(operand, dict):
            _check_expression(operand, here)
        elif isinstance(operand, str):
            _field_name(operand, here)
        elif not _is_number(operand):
            _fail(
                here,
                f"expected a field name, a number or a nested expression, got {_json_type(operand)}",
            )


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
}


def _operand(operand: Any, record: Record, path: str, index: int) -> Any:
    if isinstance(operand, dict):
        return _evaluate(operand, record, path, index)
    if not isinstance(operand, str):
        return operand
    value = _lookup(record, operand)
    if not _present(value):
        return None
    if not _is_number(value):
        _fail(
            path,
            f"field {operand!r} is {_json_type(value)} {_show(value)}, not a number "
            f"(record {index} at this step)",
        )
    return value


def _evaluate(expression: dict, record: Record, path: str, index: int) -> Any:
    ((name, (left, right)),) = expression.items()
    a = _operand(left, record, path, index)
    b = _operand(right, record, path, index)
    if a is None or b is None:
        return None  # unknown in, unknown out (like SQL NULL)
    try:
        result = _ARITHMETIC[name](a, b)
    except (ZeroDivisionError, OverflowError):
        return None
    # A float result that overflowed to inf cannot be written as JSON.
    return result if _is_number(result) else None


def _build_derive(step: dict, path: str) -> _Step:
    target = _field_name(step["field"], f"{path}.field")
    expression_path = f"{path}.expression"
    _check_expression(step["expression"], expression_path)
    expression = step["expression"]

    def derive(records: list[Record]) -> list[Record]:
        return [
            {**record, target: _evaluate(expression, record, expression_path, index)}
            for index, record in enumerate(records)
        ]

    return derive


def _build_sort(step: dict, path: str) -> _Step:
    by = _field_name(step["by"], f"{path}.by")
    descending = step.get("descending", False)
    if not isinstance(descending, bool):
        _fail(f"{path}.descending", f"expected true or false, got {_json_type(descending)}")

    def sort(records: list[Record]) -> list[Record]:
        # Missing/null go last in both directions, so they are kept out of the sort.
        keyed = [(_lookup(record, by), record) for record in records]
        present = [(value, record) for value, record in keyed if _present(value)]
        absent = [record for value, record in keyed if not _present(value)]
        present.sort(key=lambda pair: _sort_key(pair[0]), reverse=descending)
        return [record for _, record in present] + absent

    return sort


def _build_limit(step: dict, path: str) -> _Step:
    count = step["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        _fail(f"{path}.count", f"expected an integer >= 0, got {_show(count)}")
    return lambda records: records[:count]


# op -> (builder, required keys, optional keys)
_STEP_BUILDERS: dict[str, tuple[Callable[[dict, str], _Step], tuple[str, ...], tuple[str, ...]]] = {
    "select": (_build_select, ("fields",), ()),
    "rename": (_build_rename, ("fields",), ()),
    "filter": (_build_filter, ("where",), ()),
    "derive": (_build_derive, ("field", "expression"), ()),
    "sort": (_build_sort, ("by",), ("descending",)),
    "limit": (_build_limit, ("count",), ()),
}


def _build_step(step: Any, path: str) -> _Step:
    if not isinstance(step, dict):
        _fail(path, f'expected an object like {{"op": "select", ...}}, got {_json_type(step)}')
    if "op" not in step:
        _fail(path, f"missing 'op'; use one of {_one_of(TRANSFORMATION_OPS)}")
    op = step["op"]
    if not isinstance(op, str) or op not in _STEP_BUILDERS:
        _fail(
            f"{path}.op",
            f"unknown transformation op {_show(op)}; use one of {_one_of(TRANSFORMATION_OPS)}",
        )
    builder, required, optional = _STEP_BUILDERS[op]
    allowed = ("op", *required, *optional)
    for key in step:
        if key not in allowed:
            _fail(path, f"unknown key {_show(key)} for {op}; allowed: {_one_of(allowed)}")
    for key in required:
        if key not in step:
            _fail(f"{path}.{key}", f"is required for {op}")
    return builder(step, path)


def _transform(input_data: Any, options: dict) -> tuple[Any, list[Record], None]:
    if "steps" not in options:
        _fail("processing_options.steps", "is required for transformation")
    steps = options["steps"]
    if not isinstance(steps, list):
        _fail("processing_options.steps", f"expected a list of steps, got {_json_type(steps)}")
    # Build every step before touching data, so a bad step fails even on empty input.
    pipeline = [_build_step(step, f"processing_options.steps[{i}]") for i, step in enumerate(steps)]
    records = list(_records(input_data))
    for apply in pipeline:
        records = apply(records)
    return records, records, None


# --- aggregation --------------------------------------------------------------------------------

# One requested output column: (field path or "*", aggregate, column name).
_Metric = tuple[str, str, str]


def _group_by_option(value: Any) -> list[str]:
    path = "processing_options.group_by"
    if value is None or value == []:
        return []
    if isinstance(value, str):
        return [_field_name(value, path)]
    if not isinstance(value, list):
        _fail(path, f"expected a field name or a list of them, got {_json_type(value)}")
    return _field_names(value, path)


def _metrics_option(value: Any) -> list[_Metric]:
    path = "processing_options.metrics"
    if not isinstance(value, dict):
        _fail(path, f'expected an object like {{"pts": ["sum"]}}, got {_json_type(value)}')
    metrics = []
    for field, aggregates in value.items():
        here = f"{path}.{field}"
        _field_name(field, path)
        if not isinstance(aggregates, list) or not aggregates:
            _fail(here, f"expected a non-empty list of aggregates ({_one_of(AGGREGATES)})")
        for aggregate in aggregates:
            if aggregate not in AGGREGATES:
                _fail(here, f"unknown aggregate {_show(aggregate)}; use one of {_one_of(AGGREGATES)}")
            if aggregates.count(aggregate) > 1:
                _fail(here, f"aggregate {aggregate!r} is listed more than once")
            if field == "*" and aggregate != "count":
                _fail(here, f"only 'count' applies to '*', not {aggregate!r}")
            column = "count" if field == "*" else f"{field}_{aggregate}"
            metrics.append((field, aggregate, column))
    return metrics


def _group_key(value: Any) -> str:
    """A hashable identity for a group value with JSON semantics (true != 1, 1 == 1.0)."""

    def normalise(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list | tuple):
            return [normalise(item) for item in v]
        if isinstance(v, dict):
            return {k: normalise(item) for k, item in v.items()}
        return v

    return json.dumps(normalise(value), sort_keys=True, default=repr)


def _group_sort_key(values: tuple) -> tuple:
    # Null group values sort after every real value; _sort_key orders mixed types.
    return tuple((1,) if value is None else (0, *_sort_key(value)) for value in values)


def _groups(records: list[Record], group_by: list[str]) -> list[tuple[tuple, list]]:
    """Split records into (group values, [(input index, record), ...]), sorted by group."""
    groups: dict[tuple[str, ...], tuple[tuple, list]] = {}
    for index, record in enumerate(records):
        values = tuple(_lookup(record, field) for field in group_by)
        for field, value in zip(group_by, values, strict=True):
            if value is _MISSING:
                _fail(f"input_data[{index}]", f"group_by field {field!r} is missing")
        key = tuple(_group_key(value) for value in values)
        groups.setdefault(key, (values, []))[1].append((index, record))
    if not group_by and not groups:
        groups[()] = ((), [])  # SQL-like: an ungrouped aggregate always yields one row
    return sorted(groups.values(), key=lambda group: _group_sort_key(group[0]))


def _metric_values(members: list, field: str, needs_numbers: str | None) -> list:
    """The non-null values of ``field`` in a group, checked to be numbers when required."""
    if field == "*":
        return [record for _, record in members]
    values = []
    for index, record in members:
        value = _lookup(record, field)
        if not _present(value):
            continue
        if needs_numbers and not _is_number(value):
            _fail(
                f"input_data[{index}].{field}",
                f"{_json_type(value)} {_show(value)} is not a number; {needs_numbers} needs numbers",
            )
        values.append(value)
    return values


def _aggregate_value(aggregate: str, values: list, field: str) -> Any:
    if aggregate == "count":
        return len(values)
    if aggregate == "sum":
        return _sum(values)
    if not values:
        return None
    if aggregate == "min":
        return min(values)
    if aggregate == "max":
        return max(values)
    try:
        return statistics.fmean(values)
    except OverflowError:
        _fail(f"input_data (field {field!r})", "numbers too large to average")


def _aggregate(input_data: Any, options: dict) -> tuple[Any, list[Record], list[str]]:
    group_by = _group_by_option(options.get("group_by"))
    metrics = _metrics_option(options.get("metrics", {"*": ["count"]}))
    for _, _, column in metrics:
        if column in group_by:
            _fail("processing_options.metrics", f"column {column!r} clashes with a group_by field")
    # The first non-count aggregate asked of a field decides that its values must be numbers.
    needs_numbers: dict[str, str | None] = {}
    for field, aggregate, _ in metrics:
        if aggregate != "count":
            needs_numbers.setdefault(field, aggregate)
    records = _records(input_data)

    rows = []
    for values, members in _groups(records, group_by):
        row: Record = dict(zip(group_by, values, strict=True))
        metric_values = {
            field: _metric_values(members, field, needs_numbers.get(field)) for field, _, _ in metrics
        }
        for field, aggregate, column in metrics:
            row[column] = _aggregate_value(aggregate, metric_values[field], field)
        rows.append(row)
    return rows, rows, [*group_by, *(column for _, _, column in metrics)]


# --- Output -------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _to_csv(rows: list[Record], columns: list[str] | None) -> str:
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if not columns:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


# operation -> (handler, allowed processing_options keys)
_OPERATIONS: dict[str, tuple[Callable[[Any, dict], tuple], tuple[str, ...]]] = {
    "analysis": (_analyse, ("fields",)),
    "transformation": (_transform, ("steps",)),
    "aggregation": (_aggregate, ("group_by", "metrics")),
}


def run_processing(
    *,
    operation: str,
    input_data: Any,
    output_format: str = "json",
    processing_options: dict | None = None,
) -> dict:
    """Run one processing operation and return its JSON-serialisable envelope.

    See the module docstring for the operations, their options and result shapes.
    Raises PermanentTaskError for any invalid input.
    """
    if not isinstance(operation, str) or operation not in _OPERATIONS:
        _fail("operation", f"unknown operation {_show(operation)}; use one of {_one_of(OPERATIONS)}")
    if not isinstance(output_format, str) or output_format not in OUTPUT_FORMATS:
        _fail(
            "output_format",
            f"unknown format {_show(output_format)}; use one of {_one_of(OUTPUT_FORMATS)}",
        )
    handler, allowed = _OPERATIONS[operation]
    options = _options(processing_options, operation, allowed)
    result, rows, columns = handler(input_data, options)
    if output_format == "csv":
        result = _to_csv(rows, columns)
    return {"operation": operation, "output_format": output_format, "result": result}
