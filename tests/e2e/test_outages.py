"""End to end: real processes through a TCP proxy that cuts their connection to SQS or PostgreSQL.

kombu's stock SQS consumer dies on the failed receive an outage causes and
the process lives on without consuming ("goes deaf"; ../shared/FACTS.md).
Wipsie's worker must resume on its own once SQS is back, lose no message
when the database goes away mid-processing, and the API's pool of database
connections must serve again within 5 s of the database's return.
"""

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from sqs_app.models import Message, MessageEvent, MessageStatus
from tests.proxy import TcpProxy

from .conftest import wait_until
from .test_worker import finished, send

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def processing(number: int) -> dict:
    return {
        "task_type": "processing",
        "message": f"after outage {number}",
        "data": {"operation": "analysis", "input_data": [{"v": number}], "output_format": "json"},
    }


@pytest.fixture
def sqs_proxy(sqs):
    moto = urlsplit(sqs)
    proxy = TcpProxy(moto.hostname, moto.port).start()
    yield proxy
    proxy.stop()


def test_a_worker_resumes_consuming_after_a_5_s_blip_and_a_40_s_outage_of_sqs(
    api_client, start_worker, sqs_proxy
):
    endpoint = f"http://127.0.0.1:{sqs_proxy.port}"
    worker = start_worker(AWS_ENDPOINT_URL_SQS=endpoint, CELERY_WAIT_TIME_SECONDS="2")
    before = send(api_client, "task_processing", processing(0))
    assert wait_until(lambda: finished(before)).status == MessageStatus.SUCCEEDED

    # One worker through both: a blip, then an outage, each followed by new work.
    for number, outage_seconds in enumerate((5, 40), start=1):
        sqs_proxy.cut()
        time.sleep(outage_seconds)
        sqs_proxy.restore()
        after = send(api_client, "task_processing", processing(number))

        # Back on its own: within the 30 s allowed, plus a long poll and a task.
        message = wait_until(lambda after=after: finished(after), timeout=45)
        assert message.status == MessageStatus.SUCCEEDED, (outage_seconds, worker.log())
        assert worker.process.poll() is None  # the same worker, still consuming


@pytest.fixture
def database_proxy(transactional_db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("cuts a PostgreSQL connection (CI runs the suite on PostgreSQL)")
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    yield proxy
    proxy.stop()


def worker_database_url_through(proxy: TcpProxy) -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}"


def test_no_message_is_lost_when_the_database_goes_away_for_20_s_then_50_s_during_processing(
    start_worker, boto_sqs, database_proxy
):
    # One worker through both outages. A message whose outcome cannot be
    # recorded comes back after 10 s, 20 s, 40 s...: capped at 10 s here, so
    # that the test waits for the outage, not for the backoff after it (a 50 s
    # outage is then 6 or 7 receives, within SQS_MAX_RECEIVE_COUNT).
    worker = start_worker(
        DATABASE_URL=worker_database_url_through(database_proxy), TASK_UNRECORDED_RETRY_MAX_SECONDS="10"
    )
    url = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    for outage_seconds in (20, 50):
        ids = []
        for start in range(0, 200, 10):
            entries = [{"Id": str(n), "MessageBody": json.dumps(processing(start + n))} for n in range(10)]
            sent = boto_sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]
            ids += [ok["MessageId"] for ok in sent]
        assert len(ids) == 200

        def succeeded(ids=ids) -> int:
            return Message.objects.filter(sqs_message_id__in=ids, status=MessageStatus.SUCCEEDED).count()

        # Cut the database while the worker is in the middle of them.
        wait_until(lambda: succeeded() >= 20, timeout=60)
        database_proxy.cut()
        time.sleep(outage_seconds)
        database_proxy.restore()

        wait_until(lambda: succeeded() == 200, timeout=240, interval=1.0)
        assert worker.process.poll() is None, worker.log()
        # Each message once: one row, one success, whatever was retried.
        assert Message.objects.filter(sqs_message_id__in=ids).count() == 200
        assert MessageEvent.objects.filter(message__sqs_message_id__in=ids, kind="succeeded").count() == 200
        visible = boto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert visible["Attributes"]["ApproximateNumberOfMessages"] == "0", outage_seconds


def test_the_apis_pool_recovers_within_5_s_of_the_database_returning(gunicorn, database_proxy, sqs, operator):
    """A real gunicorn (psycopg's pool, health-checked) whose connections to PostgreSQL break for a while."""
    server = gunicorn(
        DATABASE_URL=worker_database_url_through(database_proxy),
        AWS_ENDPOINT_URL_SQS=sqs,
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="2",
        AUTH_USER_CACHE_SECONDS="0",  # every authenticated request reads the user too
        # Requests during the outage give up on the pool sooner than the default 10 s:
        # only the time the test waits changes, not what happens after the return.
        DATABASE_POOL_TIMEOUT="2",
    )
    # The test settings hash with MD5, which production settings refuse: a hash gunicorn accepts.
    operator.password = PBKDF2PasswordHasher().encode("pool-test-pass", "pool-salt", iterations=1000)
    operator.save(update_fields=["password"])
    token = post_json(
        f"{server.base}/api/token/", {"username": operator.username, "password": "pool-test-pass"}
    )
    requests = [
        (f"{server.base}/health/ready", {}),
        (f"{server.base}/sqs/messages", {"Authorization": f"Bearer {token['access']}"}),
    ]

    def burst(count: int) -> list[int]:
        """`count` requests, 4 at a time, alternately a readiness probe and a history page."""
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda n: status_of(*requests[n % 2]), range(count)))

    assert burst(16) == [200] * 16  # every pooled connection in use once
    database_proxy.cut()
    assert 200 not in burst(4)  # the outage bites
    time.sleep(2)
    database_proxy.restore()

    time.sleep(5)  # the bound: within 5 s of the database returning, no request fails
    assert burst(40) == [200] * 40
    health = json.loads(urllib.request.urlopen(f"{server.base}/health", timeout=30).read())  # noqa: S310
    assert health["checks"]["database"]["status"] == "ok"
    server.stop()


def status_of(url: str, headers: dict) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def post_json(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())
