"""One INSERT statement for a few new rows of a model, with their ids back.

`Model.save()` and `QuerySet.bulk_create()` do the same through more machinery:
per-row signals and checks, a query compiler, and for bulk_create a
transaction (a BEGIN and a COMMIT round trip) even for one row. On the send
path, which writes two small rows per message, that machinery cost more CPU
than the database did (bench/README.md). The statement built here is plain
SQL that PostgreSQL and SQLite (3.35+) both run; its columns and values come
from the model's own fields, so it follows the model as it changes.

Nothing listens to Message or MessageEvent signals; rows inserted here send none.
"""

import functools
from dataclasses import dataclass

from django.db import connection
from django.db.models import Field, Model


def insert_rows(
    rows: list[Model],
    *,
    on_conflict: tuple[str, ...] = (),
    update: tuple[str, ...] = (),
    skip_existing: bool = False,
) -> int:
    """INSERT these unsaved rows of one model in one statement, and set their primary keys.

    With `on_conflict` (the fields of one of the model's unique constraints), a
    row that is already there is not inserted: only its `update` fields are set
    from the new row (an upsert), and its primary key is the one returned.
    With `skip_existing`, a row that would break any unique constraint is not
    inserted and keeps no primary key (ON CONFLICT DO NOTHING); one row only.
    Returns how many rows were written.
    """
    if not rows:
        return 0
    if skip_existing and (on_conflict or len(rows) != 1):
        raise ValueError("skip_existing inserts exactly one row, without on_conflict")
    meta = type(rows[0])._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    params = [
        field.get_db_prep_save(field.pre_save(row, True), connection) for row in rows for field in fields
    ]
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        # Only quoted model identifiers are formatted in; every value is a parameter.
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES {', '.join([one_row] * len(rows))}"
    )
    if skip_existing:
        sql += " ON CONFLICT DO NOTHING"
    elif on_conflict:
        sql += _upsert(meta, on_conflict, update)
    sql += f" RETURNING {quote(meta.pk.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # Both databases return the rows in the order of VALUES (bulk_create relies on it too).
        pks = [row[0] for row in cursor.fetchall()]
    if skip_existing and not pks:
        return 0
    for row, pk in zip(rows, pks, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias
    return len(pks)


def _upsert(meta, on_conflict: tuple[str, ...], update: tuple[str, ...]) -> str:
    """ON CONFLICT on the unique fields `on_conflict`: set the `update` fields from the new row."""
    quote = connection.ops.quote_name
    target = ", ".join(quote(meta.get_field(name).column) for name in on_conflict)
    columns = [quote(meta.get_field(name).column) for name in update]
    return f" ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)


# --- Prepared inserts: the SQL and the constant values worked out once per process ------


@dataclass(frozen=True)
class _Plan:
    """How to INSERT a row of `model` when the caller gives the values of `given`."""

    table: str
    columns: tuple[str, ...]  # quoted, in the model's field order
    # Per column: the field, when its value comes with each row (prepared per row),
    # or the value prepared once, for a field that takes its default.
    slots: tuple[tuple[Field | None, object], ...]


@functools.lru_cache(maxsize=32)
def _plan(model: type[Model], given: frozenset[str], vendor: str) -> _Plan:
    """The plan for `model` with the fields (by attname) in `given`; every other field takes its default.

    A field left out must have a default that is the same for every row (a
    constant, or `dict`/`list`): its prepared value is reused. A field whose
    default changes per row (`timezone.now`, `uuid4`, `auto_now`) must be given,
    or this refuses at once, so that no row is ever written with a stale value.
    """
    quote = connection.ops.quote_name
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    unknown = given - {field.attname for field in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    slots = []
    for field in fields:
        if field.attname in given:
            slots.append((field, None))
            continue
        per_row_default = (
            field.has_default() and callable(field.default) and field.default not in (dict, list)
        )
        if per_row_default or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            raise ValueError(f"{model.__name__}.{field.name} changes per row: give its value")
        slots.append((None, field.get_db_prep_save(field.get_default(), connection)))
    return _Plan(
        table=quote(model._meta.db_table),
        columns=tuple(quote(field.column) for field in fields),
        slots=tuple(slots),
    )


def prepared_insert(
    model: type[Model],
    rows: list[dict[str, object]],
    *,
    on_conflict: tuple[str, ...] = (),
    update: tuple[str, ...] = (),
    returning: tuple[str, ...] = (),
    select_from: tuple[str, dict[str, str]] | None = None,
) -> tuple[str, list]:
    """The SQL and parameters that INSERT `rows` of `model` (dicts by attname), defaults elsewhere.

    For the hot path, where `insert_rows`'s per-field work on every row costs
    more than the database: only the given values are prepared per row (by
    their fields, exactly as `save()` prepares them); the statement and every
    default are worked out once per process. Every row gives the same fields.

    - `on_conflict`/`update`: as for `insert_rows` (field names).
    - `returning`: columns to return.
    - `select_from=(relation, {attname: SQL expression})`: the rows are
      `SELECT ... FROM relation`, one per row of it, those fields computed from
      its columns and the others from the one dict in `rows`: how an INSERT in a
      WITH clause hands its new rows to a second INSERT, so that both tables are
      written by one statement. The expressions are the caller's SQL, never data.
    """
    computed = select_from[1] if select_from else {}
    given = frozenset(rows[0]) | frozenset(computed)
    plan = _plan(model, given, connection.vendor)
    params = []
    for row in rows:
        for field, constant in plan.slots:
            if field is None:
                params.append(constant)
            elif field.attname not in computed:
                params.append(field.get_db_prep_save(row[field.attname], connection))
    frozen_from = (select_from[0], tuple(sorted(computed.items()))) if select_from else None
    sql = _statement(model, given, connection.vendor, len(rows), on_conflict, update, returning, frozen_from)
    return sql, params


@functools.lru_cache(maxsize=64)
def _statement(
    model: type[Model],
    given: frozenset[str],
    vendor: str,
    row_count: int,
    on_conflict: tuple[str, ...],
    update: tuple[str, ...],
    returning: tuple[str, ...],
    select_from: tuple[str, tuple[tuple[str, str], ...]] | None,
) -> str:
    plan = _plan(model, given, vendor)
    quote = connection.ops.quote_name
    computed = dict(select_from[1]) if select_from else {}
    one_row = ", ".join(
        computed[field.attname] if field is not None and field.attname in computed else "%s"
        for field, _ in plan.slots
    )
    # Only quoted model identifiers and the caller's expressions are formatted in;
    # every value is a parameter.
    sql = f"INSERT INTO {plan.table} ({', '.join(plan.columns)}) "  # noqa: S608
    if select_from:
        sql += f"SELECT {one_row} FROM {quote(select_from[0])}"  # noqa: S608
    else:
        sql += "VALUES " + ", ".join([f"({one_row})"] * row_count)
    if on_conflict:
        sql += _upsert(model._meta, on_conflict, update)
    if returning:
        sql += " RETURNING " + ", ".join(quote(column) for column in returning)
    return sql
