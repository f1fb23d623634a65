"""End to end: a real worker through a TCP proxy that cuts its connection to SQS.

kombu's stock SQS consumer dies on the failed receive an outage causes and
the process lives on without consuming ("goes deaf"; ../shared/FACTS.md).
Wipsie's worker must resume on its own once SQS is back.
"""

import time
from urllib.parse import urlsplit

import pytest

from sqs_app.models import MessageStatus
from tests.proxy import TcpProxy

from .conftest import wait_until
from .test_worker import finished, send

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


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


@pytest.mark.parametrize("outage_seconds", [5, 40])
def test_a_worker_resumes_consuming_after_sqs_comes_back(api_client, start_worker, sqs_proxy, outage_seconds):
    endpoint = f"http://127.0.0.1:{sqs_proxy.port}"
    worker = start_worker(AWS_ENDPOINT_URL_SQS=endpoint, CELERY_WAIT_TIME_SECONDS="2")
    before = send(api_client, "task_processing", processing(0))
    assert wait_until(lambda: finished(before)).status == MessageStatus.SUCCEEDED

    sqs_proxy.cut()
    time.sleep(outage_seconds)
    sqs_proxy.restore()
    after = send(api_client, "task_processing", processing(1))

    # Back on its own: within the 30 s allowed, plus a long poll and a task.
    message = wait_until(lambda: finished(after), timeout=45)
    assert message.status == MessageStatus.SUCCEEDED, worker.log()
    assert worker.process.poll() is None  # the same worker, still consuming
