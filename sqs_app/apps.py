from django.apps import AppConfig


class SqsAppConfig(AppConfig):
    name = "sqs_app"
    verbose_name = "SQS messages"
