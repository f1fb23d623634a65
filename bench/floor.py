"""The floor the single-send issue measured against: the least a Django send can cost.

A plain Django view (no middleware, no DRF) that checks a JWT without reading
the user, sends the body with one boto3 SendMessage and records it with one ORM
INSERT. It keeps none of Wipsie's guarantees (no validation, no duplicate-id
rule, no event timeline, no audit, no metrics, no throttle): it exists only so
the bench can measure it in the same run as POST /sqs/send, and the two be
compared on the same machine at the same moment: bench/run.py serves it with
gunicorn beside the real server, bench/inprocess.py --path floor calls it in
process. Its settings: bench/floor_settings.py.
"""

import json
import uuid

from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from sqs_app import sqs_client
from sqs_app.models import Message, MessageStatus


def send(request):
    AccessToken(request.headers["Authorization"].removeprefix("Bearer "))  # signature and expiry only
    data = json.loads(request.body)
    body = json.dumps(data["message"])
    message_id = sqs_client.send_message(queue=data["queue_name"], body=body)
    now = timezone.now()
    Message.objects.create(
        standard_id=uuid.uuid4(),
        queue=data["queue_name"],
        body=data["message"],
        sqs_message_id=message_id,
        status=MessageStatus.SENT,
        sent_at=now,
    )
    return JsonResponse({"message_id": message_id, "queue": data["queue_name"], "status": "sent"})


def health(request):
    return HttpResponse("ok")  # what the bench waits for before it starts the server's steps


urlpatterns = [path("sqs/floor", send), path("health", health)]
