"""The API's JSON parser: DRF's, with the nesting of the body bounded before it is parsed.

json.loads recurses once per level of nesting, and a body nested about 900
levels deep raised RecursionError, a 500. The depth is counted on the raw
text first (sqs_app.schemas, without recursion), and a deeper body is a 422.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from .. import errors
from ..schemas import MAX_REQUEST_DEPTH, json_text_depth_exceeds


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {exc.reason}") from exc
        if json_text_depth_exceeds(text, MAX_REQUEST_DEPTH):
            raise too_deep()
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError as exc:  # a second line of defence; the count above comes first
            raise too_deep() from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


def too_deep() -> errors.ValidationFailed:
    reason = f"The body nests objects and arrays deeper than {MAX_REQUEST_DEPTH} levels."
    return errors.ValidationFailed(reason, details={"fields": {"non_field_errors": [reason]}})
