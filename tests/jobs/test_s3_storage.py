"""Originals, tiles and results in S3-compatible object storage (a local moto server), signed downloads."""

import io
import socket

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from PIL import Image, ImageFilter

from jobs.models import Job
from pipeline.collector import record_result
from tests.images import photo

from .factories import make_job, results_for

pytestmark = pytest.mark.django_db
IMAGE = photo("coffee.png").crop((0, 0, 150, 100))


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(settings, s3_endpoint):
    keys = {"access_key": "test-key", "secret_key": "test-secret"}
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
    ).create_bucket(Bucket="imagepipe-test")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "imagepipe-test",
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "querystring_auth": True,
                "querystring_expire": 60,
                "default_acl": None,
                **keys,
            },
        },
    }
    return boto3.resource(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
    )


def test_a_job_runs_on_object_storage_and_downloads_through_a_signed_url(
    s3, alice, alice_api, bob_api, django_capture_on_commit_callbacks
):
    job = make_job(alice, IMAGE)
    with django_capture_on_commit_callbacks(execute=True):  # the tiles go once the result's row commits
        for value in results_for(job, IMAGE):
            record_result(value)
    job.refresh_from_db()
    stored = {item.key for item in s3.Bucket("imagepipe-test").objects.all()}
    assert f"originals/{job.pk}.png" in stored and f"results/{job.pk}.png" in stored
    assert not any(key.startswith("tiles/") for key in stored)  # dropped once the result is in

    response = alice_api.get(f"/api/jobs/{job.pk}/result/")
    assert response.status_code == 302
    signed = response["Location"]
    assert "Signature=" in signed  # query-string auth, short-lived
    downloaded = requests.get(signed, timeout=10)
    assert downloaded.status_code == 200
    result = Image.open(io.BytesIO(downloaded.content))
    assert result.tobytes() == IMAGE.filter(ImageFilter.GaussianBlur(2)).tobytes()

    unsigned = signed.split("?")[0]
    assert requests.get(unsigned, timeout=10).status_code == 403  # nothing is public
    assert bob_api.get(f"/api/jobs/{job.pk}/result/").status_code == 404


def test_an_object_already_in_the_bucket_is_imported_by_its_key_and_left_there(s3, alice_api, bob_api):
    data = io.BytesIO()
    IMAGE.save(data, "PNG")
    bucket = s3.Bucket("imagepipe-test")
    bucket.put_object(Key="imports/alice/scans/big.png", Body=data.getvalue())
    fields = {"storage_key": "imports/alice/scans/big.png", "operations": [{"op": "invert"}]}
    assert bob_api.post("/api/jobs/", fields, format="json").status_code == 403  # not bob's prefix
    missing = {**fields, "storage_key": "imports/alice/scans/none.png"}
    assert alice_api.post("/api/jobs/", missing, format="json").status_code == 400
    response = alice_api.post("/api/jobs/", fields, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    stored = {item.key: item for item in bucket.objects.all()}
    assert f"originals/{job.pk}.png" in stored and "imports/alice/scans/big.png" in stored
    copied = stored[f"originals/{job.pk}.png"].get()["Body"].read()
    assert copied == data.getvalue() and job.original_name == "big.png" and job.tiles_total > 0
