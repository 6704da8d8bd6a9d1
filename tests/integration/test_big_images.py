"""A 100-megapixel job through the real processes on a tiny memory budget: the dispatcher reads the
original a band of rows at a time and the collector writes the result band by band (as its tiles
come, on its canvas; or from the stored tiles after the last, with no canvas), so neither holds the
image: their peak RSS is no higher than after a job a twentieth its size (as wide: a band's memory
goes with the width), give or take the budget. The result equals the whole-image reference."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.core.reference import reference

from .conftest import wait_until_finished

pytestmark = pytest.mark.integration

MB = 1 << 20
SIDE = 10_000  # 100 MP of grey: 100 MB decoded whole
BUDGET_MB = 48
CHAIN = [{"op": "gaussian_blur", "radius": 2}, {"op": "invert"}]


def status_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in bytes (VmHWM: the peak resident set so far)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def restart_with(system, overrides: dict[str, str]) -> None:
    """The system's dispatcher and collector stopped and started again under ``overrides``."""
    for name in ("dispatcher", "collector"):
        system.stop(name)
    usual = system.env
    system.env = {**usual, **overrides}
    try:
        system.start_dispatcher()
        system.start_collector()
    finally:
        system.env = usual


@pytest.fixture(params=["its canvas", "storage"])
def tight(system, request):
    """For one test: a dispatcher that may hold 48 MB of stage inputs and tasks (the image is 100 MB),
    a collector with 8 MB of results fetched ahead and a canvas of 32 MB (a PNG's bands of rows
    written as they come, 10 MB each) or none (the result written from storage after the last
    tile); which one the collector used is checked in its log."""
    restart_with(
        system,
        {
            "DISPATCH_MEMORY_MB": str(BUDGET_MB),
            "COLLECTOR_CANVAS_MB": "32" if request.param == "its canvas" else "0",
            "KAFKA_CONSUMER_QUEUE_MB": "8",
            "PYRAMID_MIN_PIXELS": "0",  # the pipeline's memory alone (bench/ measures the pyramids')
        },
    )
    yield system
    restart_with(system, {})


def photo_like(width: int, height: int) -> Image.Image:
    """Gradients with a little noise: a picture's structure, compressible enough to upload fast."""
    y, x = np.ogrid[0:height, 0:width]
    values = (x // 37 + y // 53) % 256 + np.random.default_rng(7).integers(-3, 4, (height, width))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")


def run(api, system, image: Image.Image, path) -> dict:
    image.save(path, compress_level=1)
    with open(path, "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/",
            files={"image": (path.name, handle)},
            data={"operations": json.dumps(CHAIN), "tile_size": 1024},
        )
    assert response.status_code == 201, response.text
    body = wait_until_finished(api, system, response.json()["id"])
    assert body["status"] == "done", body["error"]
    return body


def test_a_100_mp_job_costs_no_more_memory_than_a_5_mp_one_and_equals_the_reference(
    api, tight, tmp_path, request
):
    roles = {name: tight.processes[name].pid for name in ("dispatcher", "collector")}
    log = tight.log_dir / "collector.log"
    logged = log.stat().st_size
    run(api, tight, photo_like(SIDE, SIDE // 20), tmp_path / "small.png")  # 5 MP, as wide
    small = {name: status_kb(pid, "VmHWM") for name, pid in roles.items()}
    image = photo_like(SIDE, SIDE)
    body = run(api, tight, image, tmp_path / "big.png")
    big = {name: status_kb(pid, "VmHWM") for name, pid in roles.items()}
    grown = {name: big[name] - small[name] for name in roles}
    print(
        {name: f"peak {small[name] / MB:.0f} MB at 5 MP, {big[name] / MB:.0f} MB at 100 MP" for name in roles}
    )
    # 95 MB more pixels decoded, cut, collected and written, for less than the budget more: what
    # each holds is a band of rows (a tile row and its halos, 10 MB here), as wide as the image.
    assert all(more < BUDGET_MB * MB for more in grown.values()), grown

    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    assert result.tobytes() == reference(image, CHAIN).tobytes()
    with log.open("rb") as collector:
        collector.seek(logged)
        assembled = [line for line in collector.read().decode().splitlines() if "assembled from" in line]
    how = request.node.callspec.params["tight"]
    assert len(assembled) == 2 and all(f"assembled from {how}:" in line for line in assembled)


def test_an_upload_is_handed_to_the_application_a_chunk_at_a_time_not_held_whole(api, system):
    """daphne queues a whole request body before the application reads any of it; the web server
    lets each chunk go and reads it back from the spooled body when it is taken (SpooledBody)."""
    web = system.processes["web"].pid
    chain = {"operations": json.dumps([{"op": "invert"}])}
    api.post(f"{api.base}/api/jobs/", files={"image": ("warm.png", b"x" * MB)}, data=chain)  # code paths warm
    before = status_kb(web, "VmHWM")
    body = np.random.default_rng(1).integers(0, 256, 80 * MB, np.uint8).tobytes()  # not an image
    response = api.post(f"{api.base}/api/jobs/", files={"image": ("noise.png", body)}, data=chain)
    assert response.status_code == 415, response.text  # read through, then refused
    assert status_kb(web, "VmHWM") - before < 16 * MB  # not the 80 MB body
