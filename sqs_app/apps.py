from django.apps import AppConfig


class SqsAppConfig(AppConfig):
    name = "sqs_app"
    verbose_name = "SQS messages"

    def ready(self):
        from django.contrib.auth import get_user_model

        from . import admin_audit, tokens
        from .authentication import connect_signals

        admin_audit.register()
        connect_signals()
        tokens.connect(get_user_model())
