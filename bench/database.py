"""Which database the benchmarked server writes its message history to.

PostgreSQL is what production runs, so it is the default. The default bench
database belongs to the benchmark and is created afresh on every run: every run
starts from empty tables (comparable runs) and from the migrations as they are now
(during development the initial migration is edited in place, and an old schema
would turn every send into a 500). Without a reachable PostgreSQL the default
falls back to a SQLite file under bench/results/, likewise fresh, and the engine is
printed with the results because SQLite's single writer changes the numbers a lot.
A database given with --database-url is used as it is: migrated, never dropped.
"""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# One per checkout (wipsie_bench_main, wipsie_bench_wt_issue7...): a run drops and recreates its
# database, and must never drop the one a run in another worktree is using.
_CHECKOUT = "".join(c if c.isalnum() else "_" for c in Path(__file__).resolve().parent.parent.name.lower())
DEFAULT_DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/wipsie_bench_{_CHECKOUT}"


@dataclass(frozen=True)
class Database:
    url: str
    engine: str  # "postgresql" or "sqlite"
    version: str
    name: str
    note: str = ""  # why this database was chosen, when it is not the one asked for


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql", "pgsql")


def _postgres_prepare(url: str, *, fresh: bool) -> Database:
    """Create the database named in `url` (dropping it first if `fresh`); raises when unreachable."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    # Connect to the maintenance database: the bench database may not exist yet.
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, connect_timeout=3, autocommit=True) as conn:
        if fresh:
            # FORCE (PostgreSQL 13+) ends sessions left over from an interrupted run.
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = conn.execute("SHOW server_version").fetchone()[0]
    return Database(url=url, engine="postgresql", version=f"PostgreSQL {version}", name=name)


def _sqlite(path: Path, *, fresh: bool, note: str = "") -> Database:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
    return Database(
        url=f"sqlite:///{path}",
        engine="sqlite",
        version=f"SQLite {sqlite3.sqlite_version}",
        name=path.name,
        note=note,
    )


def choose_database(requested: str | None, results_dir: Path) -> Database:
    """The database to use. Only the default PostgreSQL falls back to SQLite; an explicit URL never does."""
    if requested and not _is_postgres(requested):
        if requested.startswith("sqlite:///"):
            return _sqlite(Path(requested.removeprefix("sqlite:///")), fresh=False)
        raise SystemExit(f"--database-url: use a postgres:// or sqlite:/// URL, not {requested!r}")
    try:
        return _postgres_prepare(requested or DEFAULT_DATABASE_URL, fresh=not requested)
    except Exception as exc:  # psycopg.OperationalError and friends: PostgreSQL is not there
        if requested:
            raise SystemExit(f"PostgreSQL at {requested} is not usable: {exc}") from exc
        return _sqlite(
            results_dir / "bench.sqlite3",
            fresh=True,
            note=f"PostgreSQL not reachable at {DEFAULT_DATABASE_URL} ({type(exc).__name__}); using SQLite",
        )
