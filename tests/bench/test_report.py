"""The bench's figures and verdicts (bench/report.py), and its emulator launcher (bench/procs.py)."""

import urllib.request

import pytest

from bench import procs
from bench.load import LoadResult
from bench.report import rows_from, verdicts
from bench.steps import StepResult


def step(kind, path, clients, *, emulator="ministack", latencies, wipsie_cpu_s=None, per_request=1):
    load = LoadResult(clients=clients, requests_planned=len(latencies))
    load.latencies_ms = latencies
    load.statuses = ["200"] * len(latencies)
    load.messages_sent = len(latencies) * per_request
    load.wall_seconds = 1.0
    cpu = {"wipsie": wipsie_cpu_s} if wipsie_cpu_s is not None else {}
    return StepResult(
        name=f"{kind} {path}",
        kind=kind,
        path=path,
        clients=clients,
        messages_per_request=per_request,
        load=load,
        cpu_seconds=cpu,
        emulator=emulator,
    )


def lines(results, statements=None):
    return [verdict.line() for verdict in verdicts(rows_from(results), statements)]


def test_the_added_latency_is_the_api_p50_minus_the_direct_p50_on_the_same_emulator():
    found = lines(
        [
            step("direct", "send", 1, latencies=[2.0, 2.0, 2.0]),
            step("api", "send", 1, latencies=[4.5, 4.5, 4.5], wipsie_cpu_s=0.006),
            step("direct", "send", 1, emulator="moto", latencies=[10.0, 10.0, 10.0]),
            step("api", "send", 1, emulator="moto", latencies=[20.0, 20.0, 20.0], wipsie_cpu_s=0.006),
        ]
    )

    assert "PASS  [ministack] POST /sqs/send added latency at 1 client: 2.5 ms" in "\n".join(found)
    assert "MISS  [moto, for reference] POST /sqs/send added latency at 1 client: 10.0 ms" in "\n".join(found)


def test_the_single_send_is_judged_on_p95_and_cpu_at_sixteen_clients():
    # 16 requests of one message, 0.032 s of CPU: 2 ms per message.
    found = lines([step("api", "send", 16, latencies=[50.0] * 15 + [150.0], wipsie_cpu_s=0.032)])

    assert "MISS  [ministack] POST /sqs/send P95 at 16 clients: 150.0 ms (target < 100 ms)" in found
    assert (
        "PASS  [ministack] POST /sqs/send Wipsie CPU at 16 clients: 2.00 ms/msg (target <= 2.5 ms/msg)"
        in found
    )


def test_the_single_send_is_judged_over_the_floor_served_in_the_same_run():
    # 16 messages each: the send at 0.064 s of CPU (4 ms each), the floor at 0.048 s (3 ms each).
    send = step("api", "send", 16, latencies=[50.0] * 16, wipsie_cpu_s=0.064)
    floor = step("floor", "send", 16, latencies=[40.0] * 16, wipsie_cpu_s=0.048)
    on_moto = step("floor", "send", 16, emulator="moto", latencies=[40.0] * 16, wipsie_cpu_s=0.016)

    found = lines([send, floor, on_moto])

    assert (
        "MISS  [ministack] POST /sqs/send over the floor (bench/floor.py) in the same run, at 16 clients: "
        "1.33x (4.00 / 3.00 ms/msg) (target <= 1.14x: 2.5 ms over the floor's 2.2 ms when the target was set)"
    ) in found
    # The moto floor is not compared with the ministack send; without a send on moto, no line.
    assert not [line for line in found if "moto" in line]
    # Its own capacity, as the API's: the floor is a web server too.
    assert [row.wipsie_capacity for row in rows_from([floor])] == [2000 / 3.0]


def test_the_batch_is_judged_per_message_and_the_database_per_fresh_send():
    batch = step("api", "send-batch", 16, latencies=[30.0] * 10, wipsie_cpu_s=0.12, per_request=10)
    counted = {"ministack": {"send (fresh id)": {"round_trips_per_message": 3.0}}}

    found = "\n".join(lines([batch], counted))

    assert "MISS  [ministack] POST /sqs/send-batch Wipsie CPU at 16 clients: 1.200 ms/msg" in found
    assert "MISS  [ministack] database round trips per send (fresh id): 3.00 (target <= 2)" in found


def test_an_unknown_emulator_is_refused():
    with pytest.raises(ValueError, match="unknown emulator"):
        procs.start_emulator("localstack", procs.Processes(procs.ROOT / "bench" / "results" / "logs"))


def test_the_moto_emulator_starts_answers_and_stops(tmp_path):
    processes = procs.Processes(tmp_path)
    try:
        emulator = procs.start_emulator("moto", processes)
        with urllib.request.urlopen(f"{emulator.endpoint}/moto-api/", timeout=10) as response:  # noqa: S310
            assert response.status == 200
        assert emulator.kind == "moto"
        assert procs.cpu_seconds(emulator.pid) is not None
    finally:
        processes.stop_all()
    assert processes.started == []


def test_the_statements_table_shows_sql_and_sqs_calls_per_message():
    from bench.report import statements_table

    table = statements_table(
        {
            "send (fresh id)": {
                "requests": 50,
                "round_trips_per_message": 1.0,
                "transactions_per_message": 0.0,
                "statement_kinds": {"WITH": 50},
                "sqs_calls_per_message": 1.0,
                "sqs_call_kinds": {"SendMessage": 50},
            }
        }
    )

    assert "| send (fresh id) | 50 | 1.00 | 0.00 | WITH 50 | 1.00 | SendMessage 50 |" in table
