"""The three task families, by task_type, and the one validation they share.

A handler takes the StandardMessage, its validated `data` and its history row's id,
and returns the JSON-serialisable result that Celery stores as the task result.
"""

from sqs_app.errors import validation_details
from sqs_app.schemas import StandardMessageSerializer

from .errors import PermanentTaskError
from .notifications import notification_send
from .polling import poll_source
from .processing import run_processing


def validated_task_data(body: object, *, task_type: str) -> dict:
    """The message's `data`, validated by the same schema the API uses, or a permanent failure."""
    if not isinstance(body, dict):
        raise PermanentTaskError("the message body is not a JSON object")
    serializer = StandardMessageSerializer(data=body)
    if not serializer.is_valid():
        fields = validation_details(serializer.errors)["fields"]
        problems = "; ".join(f"{path}: {' '.join(messages)}" for path, messages in fields.items())
        raise PermanentTaskError(f"invalid {task_type} message: {problems}")
    return serializer.validated_data["data"]


def _processing(*, message: dict, data: dict, record_pk: int) -> dict:
    return run_processing(
        operation=data["operation"],
        input_data=data["input_data"],
        output_format=data["output_format"],
        processing_options=data.get("processing_options"),
    )


def _notification(*, message: dict, data: dict, record_pk: int) -> dict:
    return notification_send(message=message, data=data)


def _data_polling(*, message: dict, data: dict, record_pk: int) -> dict:
    return poll_source(message=message, data=data, record_pk=record_pk)


HANDLERS = {"data_polling": _data_polling, "processing": _processing, "notification": _notification}
