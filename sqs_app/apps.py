from django.apps import AppConfig


class SqsAppConfig(AppConfig):
    name = "sqs_app"
    verbose_name = "SQS messages"

    def ready(self):
        from django.contrib.auth import get_user_model

        from . import tokens
        from .authentication import connect_signals
        from .metrics import register_collector

        register_collector()
        connect_signals()
        tokens.connect(get_user_model())
