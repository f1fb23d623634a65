"""Counting what a worker asks of SQS and of PostgreSQL, per task.

- `CountingProxy`: a small HTTP proxy in front of the emulator that counts
  requests by SQS action (`X-Amz-Target: AmazonSQS.ReceiveMessage` for the
  JSON protocol, `Action=ReceiveMessage` for the query protocol, which
  kombu's asynchronous receive may use). Everything the worker sends to SQS,
  boto3 and pycurl alike, goes through it.
- `StatementLog`: the SQL statements a PostgreSQL role ran, read from the
  server's log. The worker connects as a role of its own with
  `log_statement = 'all'` set on that role, so its statements, and only its,
  are logged (`log_line_prefix` names the role).

Both add work of their own, so the counting step runs apart from the timed
steps: its counts are exact, its rate is not judged.
"""

import http.client
import http.server
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


def _action(headers, body: bytes, path: str) -> str:
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    for source in (body.decode("utf-8", "replace"), urlsplit(path).query):
        found = parse_qs(source).get("Action")
        if found:
            return found[0]
    return "other"


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A worker that stops drops its keep-alive connections while they wait for its next
        # call: nothing was lost from the count, so no traceback in the bench's output.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass
class CountingProxy:
    upstream: str  # http://host:port of the emulator
    calls: Counter = field(default_factory=Counter)

    def start(self) -> str:
        parts = urlsplit(self.upstream)
        proxy = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    proxy.calls[_action(self.headers, body, self.path)] += 1
                upstream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *args):
                pass

        self.server = _ProxyServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return urlunsplit(("http", f"127.0.0.1:{self.server.server_address[1]}", "", "", ""))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class StatementLog:
    """The statements one role runs, from PostgreSQL's log (Debian: /var/log/postgresql/)."""

    role: str
    path: Path
    offset: int = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def statements(self) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
        marker = f" {self.role}@"
        found = []
        for line in text.splitlines():
            if marker in line and "LOG:  statement: " in line:
                found.append(line.split("LOG:  statement: ", 1)[1])
        return found


def postgres_log_path(conn) -> Path | None:
    """The server's log file, when this machine's PostgreSQL writes one we can read."""
    version = conn.execute("SHOW server_version_num").fetchone()[0]
    candidate = Path(f"/var/log/postgresql/postgresql-{int(version) // 10000}-main.log")
    return candidate if candidate.exists() else None


def prepare_counting_role(maintenance_url: str, database: str, role: str) -> None:
    """A login role that logs every statement and may use the bench database's tables."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        # Membership of the tables' owner: the same rights as the worker's usual role.
        owner = conn.execute(
            "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()[0]
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER ROLE {} SET log_statement = 'all'").format(sql.Identifier(role)))
