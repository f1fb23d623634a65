from django.urls import path

from . import converters, views  # noqa: F401 - converters registers <segment:...>

urlpatterns = [
    path("queues", views.QueueListView.as_view(), name="sqs-queues"),
    path("send", views.SendView.as_view(), name="sqs-send"),
    path("send-batch", views.SendBatchView.as_view(), name="sqs-send-batch"),
    path("receive/<segment:queue_name>", views.ReceiveView.as_view(), name="sqs-receive"),
    path("message/<segment:queue_name>", views.DeleteView.as_view(), name="sqs-delete"),
    path("test-message", views.TestMessageView.as_view(), name="sqs-test-message"),
    path("dlq/<segment:queue_name>/redrive", views.RedriveView.as_view(), name="sqs-dlq-redrive"),
    path("messages", views.MessageListView.as_view(), name="sqs-messages"),
    path("messages/<segment:message_id>", views.MessageDetailView.as_view(), name="sqs-message-detail"),
]
