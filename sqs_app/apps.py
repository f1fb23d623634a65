from django.apps import AppConfig


class SqsAppConfig(AppConfig):
    name = "sqs_app"
    verbose_name = "SQS messages"

    def ready(self):
        from . import admin_audit
        from .authentication import connect_signals

        admin_audit.register()
        connect_signals()
