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

from django.db import connection
from django.db.models import Model


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
        target = ", ".join(quote(meta.get_field(name).column) for name in on_conflict)
        columns = [quote(meta.get_field(name).column) for name in update]
        sql += f" ON CONFLICT ({target}) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
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
