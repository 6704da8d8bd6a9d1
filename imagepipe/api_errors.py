"""Every API error as ``{"error": "readable message"}`` with its HTTP status."""

import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http.multipartparser import MultiPartParserError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.views import exception_handler


class ErrorSerializer(serializers.Serializer):
    """Every API error's body, documentation only."""

    error = serializers.CharField(help_text="what was refused and why, to show as it is")


def refusal(why: str) -> OpenApiResponse:
    """A refusal in the API's docs: its status's reason, and the ``{"error"}`` body."""
    return OpenApiResponse(ErrorSerializer, why)


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class NestingJSONParser(JSONParser):
    """DRF's JSON parser, with a body nested past Python's recursion limit a 400 rather than a 500,
    and a body that is not an object (the fields every view reads by name) a 400 too."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            fields = super().parse(stream, media_type, parser_context)
        except RecursionError:  # json's C scanner raises it, not the ValueError DRF turns into a 400
            raise ParseError("JSON parse error - nested too deeply") from None
        if not isinstance(fields, dict):
            raise ParseError("the body must be a JSON object of fields")
        return fields


def json_errors(exc, context):
    response = exception_handler(_refused_body(exc), context)
    if response is not None:
        response.data = {"error": _message(response.data)}
    return response


def _refused_body(exc: Exception) -> Exception:
    """Django's own refusals of a body (too many fields or files, too large, malformed multipart).

    They reach DRF as plain exceptions, which it would re-raise for Django to answer with an HTML
    or empty 400; here they become API errors, logged where Django logs them.
    """
    if isinstance(exc, SuspiciousOperation):
        logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge(str(exc))
    if isinstance(exc, (SuspiciousOperation, MultiPartParserError)):
        return ParseError(str(exc))
    return exc


def _message(data) -> str:
    if isinstance(data, dict):
        if "detail" in data:
            return str(data["detail"])
        return "; ".join(f"{field}: {_message(value)}" for field, value in data.items())
    if isinstance(data, list):
        return " ".join(_message(item) for item in data)
    return str(data)
