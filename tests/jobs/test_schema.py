"""/api/schema/ (what /api/docs/ shows): POST /api/jobs/'s answers, and the JSON fields' real types."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from imagepipe.core.operations import OPERATIONS
from jobs.models import Job
from tests.images import noise

from .factories import post_job, upload

pytestmark = pytest.mark.django_db
ERRORS = ["400", "401", "403", "413", "415", "429"]
STEP = {"type": "object", "required": ["op"], "additionalProperties": {"type": "number"}}


@pytest.fixture
def schema(alice_api):
    response = alice_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def answer(schema: dict, status: str) -> dict:
    response = schema["paths"]["/api/jobs/"]["post"]["responses"][status]
    return resolve(schema, response["content"]["application/json"]["schema"])


def test_submitting_documents_every_error_with_its_body(schema):
    assert sorted(schema["paths"]["/api/jobs/"]["post"]["responses"]) == ["201", *ERRORS]
    for status in ERRORS:
        body = answer(schema, status)
        assert body["properties"]["error"]["type"] == "string"
        assert body["required"] == ["error"]


def test_a_new_job_is_documented_with_its_warnings(schema):
    job = answer(schema, "201")
    assert job["properties"]["warnings"]["type"] == "array"
    assert "warnings" not in job["required"]  # only there when there are some


def check_chain(field: dict) -> None:
    assert field["type"] == "array"
    assert STEP.items() <= field["items"].items()
    assert field["items"]["properties"]["op"] == {"type": "string", "enum": list(OPERATIONS)}


def test_operations_are_a_list_of_steps_in_the_job_and_the_submission(schema):
    components = schema["components"]["schemas"]
    check_chain(components["Job"]["properties"]["operations"])
    check_chain(components["SubmitRequest"]["properties"]["operations"])
    request = schema["paths"]["/api/jobs/"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert request["encoding"] == {"operations": {"contentType": "application/json"}}


def test_timings_are_numbers_or_null(schema):
    timings = schema["components"]["schemas"]["Job"]["properties"]["timings"]
    assert timings["type"] == "object"
    assert timings["properties"] == {phase: {"type": "number", "nullable": True} for phase in Job.PHASES}


def test_the_documented_types_are_what_the_api_answers(alice_api):
    job = post_job(
        alice_api, upload(noise(40, 40)), operations='[{"op": "gaussian_blur", "radius": 3}]'
    ).json()
    assert job["operations"] == [{"op": "gaussian_blur", "radius": 3.0}]
    assert job["timings"] and all(
        value is None or isinstance(value, float) for value in job["timings"].values()
    )


def refused(status: str, alice, settings):
    """A submission answered with ``status``, made as the documentation says it would be."""
    if status == "401":
        return post_job(APIClient(), upload(noise(8, 8)))
    if status == "403":  # a logged-in session that sends no CSRF token
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(alice)
        return browser.post("/api/jobs/", {"image": upload(noise(8, 8)), "operations": "[]"})
    api = APIClient()
    api.force_authenticate(alice)
    if status == "413":
        return api.post("/api/jobs/", {}, CONTENT_LENGTH=str(settings.MAX_REQUEST_BYTES * 2))
    if status == "415":
        return post_job(api, SimpleUploadedFile("notes.png", b"not a picture"))
    if status == "429":
        settings.JOB_SUBMIT_RATE = "0/minute"
    return post_job(api, upload(noise(8, 8)), operations='[{"op": "melt"}]')


@pytest.mark.parametrize("status", ERRORS)
def test_each_documented_error_comes_with_the_documented_body(status, alice, settings):
    response = refused(status, alice, settings)
    assert response.status_code == int(status)
    assert list(response.json()) == ["error"] and isinstance(response.json()["error"], str)
