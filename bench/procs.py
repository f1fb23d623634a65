"""The processes a benchmark run starts, and the CPU time they spend.

Every process is started in a session of its own (so a Ctrl-C in the terminal
reaches only the benchmark, which then stops them in order) and asks the kernel
to SIGTERM it if the benchmark dies without cleaning up.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


class StartupError(RuntimeError):
    """A server or a setup command did not come up: the run cannot measure anything."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the benchmark process dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """The servers of one run; `stop_all` ends them, newest first."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []
        # Processes stopped through their whole process group (a Celery worker and its pool).
        self._groups: set[int] = set()

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, group: bool = False
    ) -> subprocess.Popen:
        """Start `argv`; with `group`, stopping it signals its whole process group (its
        session is its own, so the group is the process and every child it forks)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(name), "wb")  # noqa: SIM115 - the child owns it for its lifetime
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Safe here: servers are started before the load generator starts any thread.
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.started.append((name, process))
        if group:
            self._groups.add(process.pid)
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, process: subprocess.Popen, signum: int) -> None:
        """Send `signum` to the process, or to its whole group if it was started with `group`."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if process.pid in self._groups:
                os.killpg(process.pid, signum)
            elif process.poll() is None:
                process.send_signal(signum)

    def stop(self, process: subprocess.Popen, timeout: float = 20.0) -> None:
        """Stop one process started here (SIGTERM, then SIGKILL after `timeout`)."""
        self._stop([entry for entry in self.started if entry[1] is process], timeout)
        self.started = [entry for entry in self.started if entry[1] is not process]

    def stop_all(self, timeout: float = 20.0) -> None:
        self._stop(list(self.started), timeout)
        self.started.clear()

    def _stop(self, entries: list[tuple[str, subprocess.Popen]], timeout: float) -> None:
        for _, process in reversed(entries):
            # SIGCONT too: a paused group (see bench.workers) cannot act on SIGTERM.
            if process.pid in self._groups:
                self.signal(process, signal.SIGCONT)
            if process.poll() is None or process.pid in self._groups:
                self.signal(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in reversed(entries):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(process, signal.SIGKILL)
                process.wait()
            if process.pid in self._groups:
                # Children that outlived their parent (a pool process) are still in the group.
                self.signal(process, signal.SIGKILL)
                self._groups.discard(process.pid)


# --- The SQS emulators ----------------------------------------------------------------

EMULATORS = ("moto", "ministack")
# ministack pins its own botocore (1.43.106), which Wipsie's boto3 does not accept: it lives in
# a venv of its own, made on first use with the ordinary `python -m venv` and `pip install`.
MINISTACK_VERSION = "1.5.33"
MINISTACK_VENV = ROOT / ".run" / "bench-ministack-venv"


@dataclass(frozen=True)
class Emulator:
    kind: str  # "moto" or "ministack"
    endpoint: str  # what AWS_ENDPOINT_URL_SQS points at
    pid: int  # the server process, for its CPU probe
    version: str


def ministack_bin() -> Path:
    """The `ministack` executable in the bench's own venv, installed on first use."""
    executable = MINISTACK_VENV / "bin" / "ministack"
    stamp = MINISTACK_VENV / f".ministack-{MINISTACK_VERSION}"
    if executable.exists() and stamp.exists():
        return executable
    print(f"Installing ministack {MINISTACK_VERSION} into {MINISTACK_VENV.relative_to(ROOT)} ...", flush=True)
    try:
        if not (MINISTACK_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(MINISTACK_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(MINISTACK_VENV / "bin" / "pip"), "install", "--quiet", f"ministack=={MINISTACK_VERSION}"],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise StartupError(f"could not install ministack {MINISTACK_VERSION}: {exc}") from exc
    stamp.touch()
    return executable


def start_emulator(kind: str, processes: "Processes") -> Emulator:
    """Start a local SQS (and SNS) emulator on a free loopback port; stopped with `processes`.

    moto is the one the test suite uses; ministack is far cheaper per call and keeps
    connections alive, so that Wipsie's own cost is not drowned by the emulator's.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    if kind == "moto":
        env = {
            **os.environ,
            # Lets the bench's queue keeper purge more often than once a minute.
            "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false",
        }
        argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        health, version = f"{endpoint}/moto-api/", metadata.version("moto")
    elif kind == "ministack":
        env = {
            **os.environ,
            "GATEWAY_PORT": str(port),
            "BIND_HOST": "127.0.0.1",
            "MINISTACK_HOST": "127.0.0.1",  # the host in the queue URLs it hands out
            "SERVICES": "sqs,sns",
            "LOG_LEVEL": "WARNING",  # one log line per call would be CPU counted as the emulator's
        }
        argv = [str(ministack_bin())]
        health, version = f"{endpoint}/_ministack/health", MINISTACK_VERSION
    else:
        raise ValueError(f"unknown emulator {kind!r}; choose from {EMULATORS}")
    process = processes.start(kind, argv, env)
    wait_for_http(health, process=process, what=kind)
    return Emulator(kind=kind, endpoint=endpoint, pid=process.pid, version=version)


def wait_for_http(url: str, *, process: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    """Wait until `url` answers at all (any HTTP status); fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise StartupError(f"{what} exited with status {process.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise StartupError(f"{what} did not answer at {url} within {timeout:.0f} s")
        time.sleep(0.2)


def manage(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    """Run a manage.py command with the server's environment; its output, or StartupError."""
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StartupError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{tail}")
    return result.stdout


# --- CPU time from /proc ------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may contain spaces and parentheses)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one live process (its threads included), in seconds."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields[0] is field 3 (state) of proc(5); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def children_of(pid: int) -> list[int]:
    """Direct children, found by scanning /proc for ppid == pid (gunicorn's workers)."""
    children = []
    for candidate in _all_pids():
        fields = _stat_fields(candidate)
        if fields is not None and int(fields[1]) == pid:
            children.append(candidate)
    return children


def processes_matching(predicate: Callable[[str], bool]) -> list[int]:
    """Processes whose command line (arguments joined by spaces) satisfies `predicate`."""
    found = []
    for pid in _all_pids():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if predicate(raw.replace(b"\0", b" ").decode(errors="replace")):
            found.append(pid)
    return found


class CpuProbe:
    """CPU seconds spent by a changing set of processes between two snapshots.

    A process that appears between the snapshots counts from zero; one that
    exits in between loses what it spent after the first snapshot (reported as
    `lost_pids`, so an underestimate is visible, never silent).
    """

    def __init__(self, name: str, pids: Callable[[], list[int]]):
        self.name = name
        self.pids = pids

    def snapshot(self) -> dict[int, float]:
        return {pid: seconds for pid in self.pids() if (seconds := cpu_seconds(pid)) is not None}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, list[int]]:
        seconds = sum(value - before.get(pid, 0.0) for pid, value in after.items())
        lost = sorted(set(before) - set(after))
        return seconds, lost


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all CPUs, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy / CLOCK_TICKS, (busy + idle + iowait) / CLOCK_TICKS


def gunicorn_pids(master: int) -> list[int]:
    return [master, *children_of(master)]


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (a Celery worker and its pool processes)."""
    parents: dict[int, int] = {}
    for candidate in _all_pids():
        fields = _stat_fields(candidate)
        if fields is not None:
            parents[candidate] = int(fields[1])
    if root not in parents:
        return []
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(frontier)
    return tree
