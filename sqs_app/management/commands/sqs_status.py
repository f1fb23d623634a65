"""The former name of sqs_queues, kept so that existing scripts go on working."""

from .sqs_queues import Command as QueuesCommand


class Command(QueuesCommand):
    help = "Same as sqs_queues."
