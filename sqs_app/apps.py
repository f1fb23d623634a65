from django.apps import AppConfig


class SqsAppConfig(AppConfig):
    name = "sqs_app"
    verbose_name = "SQS messages"

    def ready(self):
        from .authentication import connect_signals
        from .metrics import register_collector

        register_collector()
        connect_signals()
