"""A real photo through the real system: API -> Kafka -> two workers -> collector -> result."""

import io
import json
import subprocess

import pytest
from PIL import Image, ImageFilter

from imagepipe.core.normalise import normalise
from imagepipe.core.operations import parse_chain
from imagepipe.core.output import encode
from imagepipe.processes import MANAGE
from jobs.models import Job, Tile
from tests.core.reference import reference
from tests.images import DATA, noise, photo

from .conftest import PIECE_BYTES, submit, wait_until_finished

pytestmark = pytest.mark.integration


def test_a_photo_is_blurred_pixel_identically_by_two_workers(api, system):
    job = submit(api, "coffee.png", [{"op": "gaussian_blur", "radius": 4}], tile_size=128)
    assert (job["width"], job["height"], job["tiles_total"]) == (600, 400, 20)  # partial edge tiles

    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]
    assert body["tiles_done"] == 20

    response = api.get(body["result_url"])
    assert response.status_code == 200
    result = Image.open(io.BytesIO(response.content))
    reference = photo("coffee.png").filter(ImageFilter.GaussianBlur(4))
    assert (result.mode, result.size) == (reference.mode, reference.size)
    assert result.tobytes() == reference.tobytes()

    tiles = Tile.objects.filter(job_id=job["id"])
    assert tiles.count() == 20
    assert set(tiles.values_list("state", flat=True)) == {Tile.State.DONE}
    assert set(tiles.values_list("attempts", flat=True)) == {1}
    assert len(set(tiles.values_list("worker", flat=True))) == 2
    assert len(set(tiles.values_list("partition", flat=True))) == 4


def test_the_pipeline_makes_the_previews_the_web_only_serves(api, system):
    job = submit(api, "rocket.jpg", [{"op": "invert"}], tile_size=256)
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]
    assert body["thumbnail"] == "result"
    for which in ("original", "result"):  # the dispatcher made one, the collector the other
        for size in (160, 1000):
            response = api.get(f"{api.base}/api/jobs/{job['id']}/preview/{which}/?size={size}")
            assert response.status_code == 200, (which, size, response.text)
            assert response.headers["Content-Type"] == "image/jpeg"
            shown = Image.open(io.BytesIO(response.content))
            assert max(shown.size) == min(size, max(job["width"], job["height"]))


def test_a_grayscale_jpeg_chain_matches_the_whole_image_reference(api, system):
    chain = [{"op": "grayscale"}, {"op": "gaussian_blur", "radius": 2.5}]
    job = submit(api, "rocket.jpg", chain, tile_size=100)
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]

    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    reference = photo("rocket.jpg").convert("L").filter(ImageFilter.GaussianBlur(2.5))
    assert result.mode == "L"
    assert result.tobytes() == reference.tobytes()
    assert Job.objects.get(pk=job["id"]).finished_at is not None


def test_a_chain_of_every_kind_matches_on_a_photo(api, system):
    chain = [
        {"op": "autocontrast", "cutoff": 1},
        {"op": "rotate", "angle": 90},
        {"op": "gaussian_blur", "radius": 2},
        {"op": "equalize"},
        {"op": "pixelate", "block": 7},
        {"op": "contrast", "factor": 1.5},
        {"op": "median", "size": 3},
        {"op": "sepia"},
        {"op": "posterize", "bits": 5},
        {"op": "invert"},
    ]
    job = submit(api, "coffee.png", chain, tile_size=96)
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]

    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    expected = reference(photo("coffee.png"), [s.to_dict() for s in parse_chain(chain)])
    assert result.size == (400, 600)
    assert result.tobytes() == expected.tobytes()
    stages = Tile.objects.filter(job_id=job["id"]).values_list("stage", flat=True)
    assert sorted(set(stages)) == [0, 1, 2]  # cut before equalize and before contrast
    assert body["tiles_done"] == body["tiles_total"] == len(stages)


def test_resizing_steps_between_the_others_match_pillow_through_the_system(api, system):
    chain = [
        {"op": "gaussian_blur", "radius": 1.5},
        {"op": "resize", "scale": 0.37, "filter": "lanczos"},  # down, non-integer
        {"op": "median", "size": 3},
        {"op": "equalize"},
        {"op": "rotate", "angle": 90},
        {"op": "resize", "width": 500, "filter": "bicubic"},  # back up
        {"op": "crop", "left": 40, "top": 30, "width": 400, "height": 10_000},  # clamped
        {"op": "thumbnail", "width": 200, "height": 200, "filter": "hamming"},  # its reducing gap
    ]
    job = submit(api, "coffee.png", chain, tile_size=64)
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]

    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    expected = reference(photo("coffee.png"), [s.to_dict() for s in parse_chain(chain)])
    assert result.size == expected.size and max(result.size) == 200
    assert result.tobytes() == expected.tobytes()
    stages = set(Tile.objects.filter(job_id=job["id"]).values_list("stage", flat=True))
    assert stages == {0, 1, 2, 3, 4, 5}  # cut before each resampling step and before equalize


@pytest.mark.parametrize("fmt,output", [("AVIF", "heic"), ("HEIF", "avif")])
def test_avif_and_heic_go_in_and_come_out(api, system, tmp_path, fmt, output):
    original = tmp_path / f"photo.{fmt.lower()}"
    photo("coffee.png").save(original, format=fmt, quality=85)
    decoded = normalise(Image.open(original))  # what the dispatcher decodes
    chain = [{"op": "resize", "width": 300, "filter": "lanczos"}, {"op": "gaussian_blur", "radius": 1}]
    with open(original, "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/",
            files={"image": (original.name, handle)},
            data={"operations": json.dumps(chain), "tile_size": 64, "output_format": output, "quality": "90"},
        )
    assert response.status_code == 201, response.text
    body = wait_until_finished(api, system, response.json()["id"])
    assert body["status"] == "done", body["error"]

    result = api.get(body["result_url"])
    assert result.headers["Content-Type"] == f"image/{output}"
    expected = reference(decoded, [s.to_dict() for s in parse_chain(chain)])
    assert Image.open(io.BytesIO(result.content)).size == expected.size == (300, 200)
    assert str(Job.objects.get(pk=body["id"]).result.name).endswith(f".{output}")
    # lossy, but the same bytes as the whole-image reference through the same encoder
    assert result.content == encode(expected, output, 90, decoded.info.get("icc_profile"))


def test_an_rgba_photo_keeps_its_alpha_through_statistics_and_geometry(api, system, tmp_path):
    image = photo("coffee.png")
    image.putalpha(photo("camera.png").resize(image.size))  # a real, uneven alpha band
    image.save(tmp_path / "alpha.png")
    chain = [
        {"op": "equalize"},
        {"op": "dilate", "size": 3},
        {"op": "flip_vertical"},
        {"op": "saturation", "factor": 1.5},
    ]
    with open(tmp_path / "alpha.png", "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/",
            files={"image": ("alpha.png", handle)},
            data={"operations": json.dumps(chain), "tile_size": 128, "output_format": "webp"},
        )
    assert response.status_code == 201, response.text
    body = wait_until_finished(api, system, response.json()["id"])
    assert body["status"] == "done", body["error"]

    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    assert (result.format, result.mode) == ("WEBP", "RGBA")
    assert result.tobytes() == reference(image, [s.to_dict() for s in parse_chain(chain)]).tobytes()


def test_the_submit_command_waits_and_prints_the_result(api, system):
    done = subprocess.run(
        [
            *MANAGE,
            "submit",
            str(DATA / "camera.png"),
            "--op",
            "median:size=3",
            "--op",
            "invert",
            "--user",
            "alice",
            "--tile-size",
            "100",
            "--wait",
        ],
        env=system.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    path = done.stdout.strip().splitlines()[-1]
    assert "36/36 tiles  done" in done.stdout
    expected = reference(photo("camera.png"), [{"op": "median", "size": 3}, {"op": "invert"}])
    assert Image.open(path).tobytes() == expected.tobytes()


def test_the_submit_command_sends_from_another_machine_and_goes_on_with_a_cut_off_upload(api, system):
    data = (DATA / "coffee.png").read_bytes()  # 4 pieces of PIECE_BYTES
    begun = api.post(f"{api.base}/api/uploads/", data={"filename": "coffee.png", "size": len(data)}).json()
    first = api.patch(
        f"{api.base}/api/uploads/{begun['id']}/",
        data=data[:PIECE_BYTES],
        headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert first.status_code == 200, first.text
    token = api.headers["Authorization"].removeprefix("Token ")
    done = subprocess.run(
        [*MANAGE, "submit", str(DATA / "coffee.png"), "--op", "invert", "--server", system.url, "--wait"],
        env={**system.env, "IMAGEPIPE_TOKEN": token, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"resuming upload {begun['id']} at {PIECE_BYTES} of {len(data)} bytes"
    result_url = done.stdout.strip().splitlines()[-1]
    assert "2/2 tiles  done" in done.stdout
    job_url = result_url.removesuffix("result/")
    assert api.get(job_url).json()["status"] == "done" and api.get(f"{job_url}original/").content == data
    result = Image.open(io.BytesIO(api.get(result_url).content))
    assert result.tobytes() == reference(photo("coffee.png"), [{"op": "invert"}]).tobytes()
    assert api.get(f"{api.base}/api/uploads/").json()["results"] == []  # submitted: gone


@pytest.mark.parametrize("size,tiles", [((1, 1), 1), ((1, 100_000), 196)])
def test_extreme_shapes_are_processed_exactly(api, system, tmp_path, size: tuple[int, int], tiles):
    image = noise(*size, "L", seed=size[1])
    image.save(tmp_path / "thin.png")
    chain = [{"op": "gaussian_blur", "radius": 3}, {"op": "pixelate", "block": 7}]
    with open(tmp_path / "thin.png", "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/",
            files={"image": ("thin.png", handle)},
            data={"operations": json.dumps(chain)},
        )
    assert response.status_code == 201, response.text
    assert response.json()["tiles_total"] == tiles
    body = wait_until_finished(api, system, response.json()["id"])
    assert body["status"] == "done", body["error"]
    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    assert result.tobytes() == reference(image, chain).tobytes()
