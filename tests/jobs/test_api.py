"""The JSON API: authentication, submission, validation, isolation."""

import json
from typing import cast

import pytest
import pyvips
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from PIL import Image
from rest_framework import serializers
from rest_framework.test import APIClient

from jobs.models import Job, Tile
from jobs.serializers import TileSerializer
from tests.images import encoded, noise, photo

from .factories import make_job, post_job, upload

pytestmark = pytest.mark.django_db


def test_a_token_is_issued_for_a_username_and_password(alice):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "alice-pass"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert APIClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/jobs/").status_code == 200


def test_a_wrong_password_gets_no_token(alice):
    assert APIClient().post("/api/auth/token/", {"username": "alice", "password": "x"}).status_code == 400


@pytest.mark.parametrize("url", ["/api/jobs/", "/api/workers/"])
def test_anonymous_requests_are_refused(url):
    assert APIClient().get(url).status_code == 401


def test_a_submission_creates_the_job_and_its_tiles(alice_api):
    blur = '[{"op": "gaussian_blur", "radius": 4}]'
    response = post_job(
        alice_api, upload(photo("coffee.png"), "coffee.png"), operations=blur, tile_size="256"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert (body["width"], body["height"], body["tile_size"], body["tiles_total"]) == (600, 400, 256, 6)
    assert body["operations"] == [{"op": "gaussian_blur", "radius": 4.0}]
    assert body["result_url"] is None
    job = Job.objects.get(pk=body["id"])
    assert job.stage_tiles(0)[1].padded.left == 256 - 15 and job.original_name == "coffee.png"
    assert list(Tile.objects.filter(job=job).values_list("index", flat=True)) == list(range(6))
    assert cast(str, job.original.name).startswith(f"originals/{job.pk}")


def test_the_tile_size_defaults_to_512(alice_api):
    assert post_job(alice_api, upload(noise(600, 40))).json()["tile_size"] == 512


@pytest.mark.parametrize(
    "kwargs,status,message",
    [
        ({"file": upload(noise(8, 8), "x.png")}, 201, None),
        ({"file": None}, 400, "an image is required"),
        ({"file": upload(noise(8, 8)), "operations": "[{"}, 400, "not valid JSON"),
        ({"file": upload(noise(8, 8)), "operations": '[{"op": "melt"}]'}, 400, "unknown operation"),
        ({"file": upload(noise(8, 8)), "tile_size": "15"}, 400, "tile_size must be between"),
        ({"file": upload(noise(8, 8)), "tile_size": "big"}, 400, "whole number"),
    ],
)
def test_submissions_are_validated_with_clear_errors(alice_api, kwargs, status, message):
    response = post_job(alice_api, **kwargs)
    assert response.status_code == status
    if message:
        assert message in response.json()["error"]
        assert not Job.objects.exists()


@pytest.mark.parametrize(
    "step,message",
    [
        ({"op": "resize", "width": 0}, "give a width, a height or a scale"),
        ({"op": "resize", "width": 10**9}, "between 0 and 100000"),
        ({"op": "resize", "scale": "NaN"}, "must be a number"),
        ({"op": "resize", "scale": 1, "filter": "blurry"}, "must be one of nearest, box, bilinear"),
        ({"op": "crop", "left": 8, "top": 0, "width": 4, "height": 4}, "lies outside the 8×8 image"),
        ({"op": "resize", "width": 1000}, "makes a 1000×1000 image, over the 100,000-pixel limit"),
    ],
)
def test_resampling_that_cannot_apply_to_the_image_is_a_400_with_the_reason(
    alice_api, settings, step, message
):
    settings.MAX_IMAGE_PIXELS = 100_000
    response = post_job(alice_api, upload(noise(8, 8)), operations=json.dumps([step]))
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_a_file_that_is_not_an_image_is_unsupported_media(alice_api):
    response = post_job(alice_api, SimpleUploadedFile("x.png", b"hello, not a picture"))
    assert response.status_code == 415
    assert not Job.objects.exists()


def test_a_truncated_image_is_refused(alice_api):
    data = encoded(photo("coffee.png"))
    response = post_job(alice_api, SimpleUploadedFile("cut.png", data[: len(data) // 2]))
    assert response.status_code == 400
    assert "truncated or corrupt" in response.json()["error"]


def test_users_see_only_their_own_jobs_and_staff_see_all(alice_api, alice, bob, staff):
    mine, theirs = make_job(alice, noise(20, 20)), make_job(bob, noise(20, 20))
    assert [j["id"] for j in alice_api.get("/api/jobs/").json()["results"]] == [str(mine.pk)]
    assert alice_api.get(f"/api/jobs/{theirs.pk}/").status_code == 404
    assert alice_api.get(f"/api/jobs/{theirs.pk}/result/").status_code == 404
    assert alice_api.get(f"/api/jobs/{theirs.pk}/tiles/").status_code == 404

    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    assert {j["id"] for j in staff_api.get("/api/jobs/").json()["results"]} == {str(mine.pk), str(theirs.pk)}


def test_a_submission_while_storage_is_away_is_refused_with_503_and_leaves_nothing(alice_api, outage):
    outage.begin()
    response = post_job(alice_api, upload(noise(20, 20)))
    assert response.status_code == 503
    assert response.json() == {"error": "storage is unavailable; nothing was stored: try again later"}
    assert not Job.objects.exists()


def test_a_download_while_storage_is_away_is_503_and_one_whose_file_is_gone_404(alice_api, alice, outage):
    job = make_job(alice, noise(20, 20))
    outage.begin()
    response = alice_api.get(f"/api/jobs/{job.pk}/original/")
    assert response.status_code == 503
    assert response.json() == {"error": "storage is unavailable: try again later"}
    outage.end()
    job.original.storage.delete(job.original.name)
    assert alice_api.get(f"/api/jobs/{job.pk}/original/").status_code == 404


def test_the_result_of_an_unfinished_job_is_a_conflict(alice_api, alice):
    job = make_job(alice, noise(20, 20))
    response = alice_api.get(f"/api/jobs/{job.pk}/result/")
    assert response.status_code == 409
    assert "queued" in response.json()["error"]


def test_job_detail_has_the_documented_fields(alice_api, alice):
    job = make_job(alice, noise(20, 20), operations=[{"op": "grayscale"}])
    body = alice_api.get(f"/api/jobs/{job.pk}/").json()
    assert {
        "id",
        "status",
        "operations",
        "tile_size",
        "width",
        "height",
        "tiles_total",
        "tiles_done",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "result_url",
    } <= set(body)
    assert json.dumps(body["operations"]) == '[{"op": "grayscale"}]'


def test_the_tiles_of_a_job_are_listed_with_their_place(alice_api, alice):
    job = make_job(alice, noise(100, 70), tile_size=64)
    tiles = alice_api.get(f"/api/jobs/{job.pk}/tiles/").json()
    assert [(t["index"], t["x"], t["y"], t["width"], t["height"], t["state"]) for t in tiles] == [
        (0, 0, 0, 64, 64, "queued"),
        (1, 64, 0, 36, 64, "queued"),
        (2, 0, 64, 64, 6, "queued"),
        (3, 64, 64, 36, 6, "queued"),
    ]
    assert {"worker", "attempts", "partition", "offset", "duration_ms"} <= set(tiles[0])


def test_a_tile_is_listed_as_drf_writes_it_field_by_field(alice_api, alice):
    job = make_job(alice, noise(100, 70), [{"op": "invert"}, {"op": "rotate", "angle": 90}], tile_size=64)
    job.tiles.filter(index=1).update(
        state="done",
        worker="w1",
        attempts=2,
        partition=3,
        offset=7,
        duration_ms=12,
        dispatched_at=timezone.now(),
        finished_at=timezone.now(),
        error="",
    )
    listed = alice_api.get(f"/api/jobs/{job.pk}/tiles/").json()
    for tile in job.tiles.order_by("stage", "index"):
        tile.job = job
        field_by_field = serializers.ModelSerializer.to_representation(TileSerializer(), tile)
        assert json.loads(json.dumps(field_by_field, cls=DjangoJSONEncoder)) == listed.pop(0)
    assert listed == []


def test_the_operation_catalogue_is_listed_for_building_forms(alice_api):
    listed = {entry["op"]: entry for entry in alice_api.get("/api/operations/").json()}
    assert {"grayscale", "gaussian_blur", "median", "pixelate", "rotate"} <= set(listed)
    assert listed["median"]["params"] == [
        {"name": "size", "type": "int", "min": 3, "max": 15, "default": 3, "odd": True}
    ]
    assert APIClient().get("/api/operations/").status_code == 401


def test_an_rgba_image_is_accepted(alice_api):
    response = post_job(alice_api, upload(noise(40, 30, "RGBA")))
    assert response.status_code == 201, response.content


def test_pause_and_resume_move_the_job_and_refuse_when_they_do_not_apply(alice_api, alice):
    job = make_job(alice, noise(20, 20))
    url = f"/api/jobs/{job.pk}"
    resumed = alice_api.post(f"{url}/resume/")
    assert resumed.status_code == 409
    assert resumed.json()["error"] == "the job is queued; only a paused job can be resumed"
    assert alice_api.post(f"{url}/pause/").json()["status"] == "paused"
    paused = alice_api.post(f"{url}/pause/")
    assert paused.status_code == 409
    assert paused.json()["error"] == "the job is paused; only a queued or running job can be paused"
    assert alice_api.post(f"{url}/resume/").json()["status"] == "queued"


def test_the_plan_tells_a_chain_s_stages_tiles_and_result_before_any_upload(alice_api):
    chain = [
        {"op": "gaussian_blur", "radius": 2},
        {"op": "resize", "width": 300},
        {"op": "rotate", "angle": 90},
    ]
    body = {"operations": chain, "width": 1200, "height": 800, "tile_size": 256}
    response = alice_api.post("/api/plan/", body, format="json")
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["result"] == {"width": 200, "height": 300, "mode": "RGB"}
    stages = [(s["input"], s["output"], s["tiles"]) for s in plan["stages"]]
    # the second stage, cut before the resize, over its 300 × 200 output in tiles of 256 / 4
    assert stages == [([1200, 800], [1200, 800], 20), ([1200, 800], [200, 300], 20)]
    assert plan["tiles_total"] == 40
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "body,message",
    [
        ({"operations": [{"op": "crop", "left": 90, "top": 0, "width": 5, "height": 5}]}, "lies outside"),
        ({"operations": [{"op": "invert"}], "width": 0}, "at least 1 × 1"),
        ({"operations": [{"op": "invert"}], "mode": "CMYK"}, "mode must be one of"),
        ({"operations": "[{"}, "not valid JSON"),
        ([None, None], "must be a JSON object"),
    ],
)
def test_a_plan_that_would_be_refused_says_why(alice_api, body, message):
    body = {"width": 80, "height": 60, **body} if isinstance(body, dict) else body
    response = alice_api.post("/api/plan/", body, format="json")
    assert response.status_code == 400 and message in response.json()["error"]


def test_the_plan_is_for_signed_in_users_only():
    body = {"operations": [{"op": "invert"}], "width": 8, "height": 8}
    assert APIClient().post("/api/plan/", body, format="json").status_code == 401


@pytest.mark.parametrize(
    "image",
    [Image.new("I;16", (30, 10), 4000), None],
    ids=["16-bit grey", "16-bit colour PNG"],
)
def test_a_16_bit_image_is_told_it_is_reduced_to_8_bits_before_it_starts(alice_api, image):
    if image is None:  # Pillow opens a 48-bit PNG as 8-bit RGB: libvips writes one
        data = (pyvips.Image.black(30, 10, bands=3).cast("ushort") + 40000).pngsave_buffer(bitdepth=16)
    else:
        data = encoded(image)
    response = post_job(alice_api, SimpleUploadedFile("deep.png", data))
    assert response.status_code == 201, response.content
    assert any(
        "16 bits a sample" in note and "reduced to 8 bits" in note for note in response.json()["warnings"]
    )
    assert "warnings" not in post_job(alice_api, upload(noise(30, 10))).json()
