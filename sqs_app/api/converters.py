"""Path converters for the /sqs URLs.

Django's `str` converter takes any character but '/', NUL and control
characters included; PostgreSQL refuses NUL in a query (a 500, before this).
A path segment with one of them matches no URL: 404 NOT_FOUND.
"""

from django.urls import register_converter


class SegmentConverter:
    regex = r"[^/\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SegmentConverter, "segment")
