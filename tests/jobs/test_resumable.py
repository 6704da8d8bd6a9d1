"""Resumable uploads and imports from storage: a file larger than one request, sent in pieces that
survive a dropped connection, then submitted as a job; an object already in storage, if the user
may name it."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.test import APIClient

from jobs.models import Job, Upload
from jobs.sweep import Sweep
from pipeline.retention import prune
from tests.images import encoded, noise

pytestmark = pytest.mark.django_db

CHAIN = '[{"op": "invert"}]'
PIECE = 1000


@pytest.fixture(autouse=True)
def small_pieces(settings):
    settings.UPLOAD_CHUNK_BYTES = PIECE


def begin(api: APIClient, name: str, size: int):
    return api.post("/api/uploads/", {"filename": name, "size": size}, format="json")


def send(api: APIClient, upload_id: str, offset: int, data: bytes):
    return api.patch(
        f"/api/uploads/{upload_id}/",
        data,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
    )


def upload_whole(api: APIClient, data: bytes, name: str = "big.png") -> str:
    upload = begin(api, name, len(data)).json()
    for offset in range(0, len(data), upload["chunk_bytes"]):
        response = send(api, upload["id"], offset, data[offset : offset + upload["chunk_bytes"]])
        assert response.status_code == 200, response.content
    return upload["id"]


def stored_files(media_root) -> set[str]:
    return {str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file()}


def test_an_image_sent_in_pieces_becomes_the_job_s_original_byte_for_byte(
    alice_api, media_root, django_capture_on_commit_callbacks
):
    data = encoded(noise(60, 50))  # about 9 KB: ten pieces, the last a short one
    upload_id = upload_whole(alice_api, data)
    assert Upload.objects.get().complete

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post("/api/jobs/", {"upload": upload_id, "operations": CHAIN})

    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.width, job.height, job.original_name) == (60, 50, "big.png")
    assert job.original.read() == data
    assert not Upload.objects.exists()
    assert stored_files(media_root) == {job.original.name}  # the pieces went with their upload


def test_a_dropped_connection_resumes_from_the_offset_the_upload_tells(alice_api):
    data = encoded(noise(60, 50))
    upload = begin(alice_api, "big.png", len(data)).json()
    assert (upload["offset"], upload["chunk_bytes"], upload["complete"]) == (0, PIECE, False)
    send(alice_api, upload["id"], 0, data[:PIECE])
    send(alice_api, upload["id"], PIECE, data[PIECE : 2 * PIECE])
    # The client lost its place: sending the first piece again is refused, and says where to go on.
    again = send(alice_api, upload["id"], 0, data[:PIECE])
    assert again.status_code == 409 and again.json()["offset"] == 2 * PIECE
    offset = alice_api.get(f"/api/uploads/{upload['id']}/").json()["offset"]
    for start in range(offset, len(data), PIECE):
        assert send(alice_api, upload["id"], start, data[start : start + PIECE]).status_code == 200
    response = alice_api.post("/api/jobs/", {"upload": upload["id"], "operations": CHAIN}, format="json")
    assert response.status_code == 201, response.content
    assert Job.objects.get().original.read() == data


@pytest.mark.parametrize(
    "offset,length,status,message",
    [
        (0, PIECE - 1, 400, "the piece at offset 0 must be 1000 bytes, not 999"),
        (0, PIECE + 1, 400, "the piece at offset 0 must be 1000 bytes, not 1001"),
        (PIECE, PIECE, 409, "this piece is at offset 1000, but the upload has 0 bytes"),
        ("x", PIECE, 400, "the Upload-Offset header must be a byte offset"),
    ],
)
def test_a_wrong_piece_is_refused_and_nothing_is_stored(
    alice_api, media_root, offset, length, status, message
):
    upload = begin(alice_api, "big.png", 5 * PIECE).json()
    response = send(alice_api, upload["id"], offset, b"x" * length)
    assert response.status_code == status and message in response.json()["error"]
    assert Upload.objects.get().received == 0 and not stored_files(media_root)


def test_an_unfinished_upload_cannot_be_submitted(alice_api):
    upload = begin(alice_api, "big.png", 3 * PIECE).json()
    send(alice_api, upload["id"], 0, b"x" * PIECE)
    response = alice_api.post("/api/jobs/", {"upload": upload["id"], "operations": CHAIN}, format="json")
    assert response.status_code == 400
    assert "has 1000 of its 3000 bytes: send the rest first" in response.json()["error"]
    assert Upload.objects.exists() and not Job.objects.exists()


def test_a_bad_image_keeps_its_upload_to_submit_again(alice_api, media_root):
    upload_id = upload_whole(alice_api, b"not an image at all" * 100)
    response = alice_api.post("/api/jobs/", {"upload": upload_id, "operations": CHAIN}, format="json")
    assert response.status_code == 415
    assert Upload.objects.get().complete and not Job.objects.exists()
    assert all(name.startswith(f"uploads/{upload_id}/") for name in stored_files(media_root))


@pytest.mark.parametrize(
    "size,status,message",
    [
        (0, 400, "size must be at least 1 byte"),
        ("many", 400, "size must be the file's length in bytes"),
        (10**12, 413, "the file is larger than"),
    ],
)
def test_an_upload_too_large_or_of_no_size_is_refused_before_a_byte_is_sent(alice_api, size, status, message):
    response = begin(alice_api, "big.png", size)
    assert response.status_code == status and message in response.json()["error"]
    assert not Upload.objects.exists()


def test_a_user_has_only_so_many_uploads_under_way(alice_api, settings):
    settings.UPLOADS_OPEN_MAX = 2
    assert [begin(alice_api, "a.png", 10).status_code for _ in range(3)] == [201, 201, 429]
    assert "UPLOADS_OPEN_MAX" in begin(alice_api, "a.png", 10).json()["error"]


def test_uploads_are_their_owner_s(alice_api, bob_api, staff):
    upload_id = begin(alice_api, "a.png", 2 * PIECE).json()["id"]
    send(alice_api, upload_id, 0, b"a" * PIECE)
    assert bob_api.get(f"/api/uploads/{upload_id}/").status_code == 404
    assert bob_api.get("/api/uploads/").json()["results"] == []
    assert send(bob_api, upload_id, PIECE, b"b" * PIECE).status_code == 404
    assert bob_api.delete(f"/api/uploads/{upload_id}/").status_code == 404
    submitted = bob_api.post("/api/jobs/", {"upload": upload_id, "operations": CHAIN}, format="json")
    assert submitted.status_code == 404 and not Job.objects.exists()
    assert APIClient().get(f"/api/uploads/{upload_id}/").status_code == 401
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    assert staff_api.get(f"/api/uploads/{upload_id}/").json()["owner"] == "alice"
    assert Upload.objects.get().received == PIECE


def test_a_deleted_upload_goes_with_its_pieces(alice_api, media_root, django_capture_on_commit_callbacks):
    upload_id = begin(alice_api, "a.png", 2 * PIECE).json()["id"]
    send(alice_api, upload_id, 0, b"a" * PIECE)
    assert stored_files(media_root) == {f"uploads/{upload_id}/000000"}
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_api.delete(f"/api/uploads/{upload_id}/").status_code == 204
    assert not Upload.objects.exists() and not stored_files(media_root)


def test_an_upload_left_unfinished_expires_with_its_pieces(
    alice_api, media_root, settings, django_capture_on_commit_callbacks
):
    settings.UPLOAD_EXPIRY_HOURS = 1
    stale, fresh = (begin(alice_api, "a.png", 2 * PIECE).json()["id"] for _ in range(2))
    for upload_id in (stale, fresh):
        send(alice_api, upload_id, 0, b"a" * PIECE)
    Upload.objects.filter(pk=stale).update(updated_at=timezone.now() - timedelta(hours=1, seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert prune().uploads == 1

    assert [str(pk) for pk in Upload.objects.values_list("pk", flat=True)] == [fresh]
    assert stored_files(media_root) == {f"uploads/{fresh}/000000"}


def test_the_sweep_deletes_pieces_no_upload_names(media_root, settings):
    settings.SWEEP_GRACE_SECONDS = 0
    default_storage.save("uploads/4c1b1d4e-0000-4000-8000-000000000000/000000", ContentFile(b"left"))
    counts = Sweep().run()
    assert counts["unnamed_deleted"] == 1 and not stored_files(media_root)


def put(key: str, data: bytes) -> None:
    default_storage.save(key, ContentFile(data))


def test_an_object_in_storage_under_the_user_s_prefix_becomes_a_job(alice_api, media_root):
    data = encoded(noise(40, 30))
    put("imports/alice/scans/one.png", data)
    response = alice_api.post(
        "/api/jobs/", {"storage_key": "imports/alice/scans/one.png", "operations": CHAIN}, format="json"
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert job.original_name == "one.png" and job.original.read() == data
    assert default_storage.exists("imports/alice/scans/one.png")  # the user's object is left as it was


@pytest.mark.parametrize(
    "key,status,message",
    [
        ("imports/bob/one.png", 403, "you may import only keys under imports/alice/"),
        ("originals/one.png", 403, "you may import only keys under imports/alice/"),
        ("imports/alice/../bob/one.png", 400, "is not a storage key"),
        ("/imports/alice/one.png", 400, "is not a storage key"),
        ("imports/alice//one.png", 400, "is not a storage key"),
        ("imports/alice/none.png", 400, "there is no object imports/alice/none.png in storage"),
    ],
)
def test_an_object_the_user_may_not_name_is_refused(alice_api, key, status, message):
    put("imports/bob/one.png", encoded(noise(8, 8)))
    put("originals/one.png", encoded(noise(8, 8)))
    response = alice_api.post("/api/jobs/", {"storage_key": key, "operations": CHAIN}, format="json")
    assert response.status_code == status and message in response.json()["error"]
    assert not Job.objects.exists()


def test_staff_import_from_anywhere_under_the_prefix_and_nobody_when_it_is_off(staff, alice_api, settings):
    put("imports/bob/one.png", encoded(noise(8, 8)))
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    fields = {"storage_key": "imports/bob/one.png", "operations": CHAIN}
    assert staff_api.post("/api/jobs/", fields, format="json").status_code == 201
    settings.IMPORT_PREFIX = ""
    refused = staff_api.post("/api/jobs/", fields, format="json")
    assert refused.status_code == 403 and "IMPORT_PREFIX" in refused.json()["error"]


def test_an_image_comes_one_way_only(alice_api):
    put("imports/alice/one.png", encoded(noise(8, 8)))
    upload_id = upload_whole(alice_api, encoded(noise(8, 8)))
    response = alice_api.post(
        "/api/jobs/",
        {"upload": upload_id, "storage_key": "imports/alice/one.png", "operations": CHAIN},
        format="json",
    )
    assert response.status_code == 400 and "not as upload and storage_key" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/uploads/", "/api/jobs/"])
def test_a_body_that_is_no_object_of_fields_is_refused(alice_api, path):
    response = alice_api.post(path, "[null, null]", content_type="application/json")
    assert response.status_code == 400 and "must be a JSON object" in response.json()["error"]


def test_an_upload_id_that_is_no_uuid_is_not_found(alice_api):
    assert send(alice_api, "null,null", 0, b"x").status_code == 404
    assert alice_api.get("/api/uploads/null,null/").status_code == 404
