"""Every API error as ``{"error": "readable message"}`` with its HTTP status."""

from rest_framework.views import exception_handler


def json_errors(exc, context):
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": _message(response.data)}
    return response


def _message(data) -> str:
    if isinstance(data, dict):
        if "detail" in data:
            return str(data["detail"])
        return "; ".join(f"{field}: {_message(value)}" for field, value in data.items())
    if isinstance(data, list):
        return " ".join(_message(item) for item in data)
    return str(data)
