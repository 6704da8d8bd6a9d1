"""A job's stored tiles through the real system: a statistics chain keeps its first stage's tiles
while its next stage is cut from them and drops every tile once its result is stored; a job
cancelled mid-run keeps the tiles it has, and its retry finishes exact, then drops them. (Pruning
itself, the keep flag and the dispatcher's idle pruning: tests/pipeline/test_retention.py.)"""

import io
from pathlib import Path

import pytest
from PIL import Image

from imagepipe.core.operations import parse_chain
from jobs.models import Job
from tests.core.reference import reference
from tests.images import photo

from .conftest import submit, wait_for, wait_until_finished

pytestmark = pytest.mark.integration
STATISTICS = [{"op": "gaussian_blur", "radius": 2}, {"op": "equalize"}]  # two stages, cut before equalize
LONG = [{"op": "median", "size": 5}, {"op": "gaussian_blur", "radius": 2}]  # 247 tiles of 32 px


def stored_tiles(system, job_id) -> list[str]:
    """The job's tile files in the system's storage."""
    folder = Path(system.env["MEDIA_ROOT"]) / "tiles" / str(job_id)
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def assert_exact_and_its_tiles_gone(api, system, job_id, chain) -> None:
    body = wait_until_finished(api, system, job_id)
    assert body["status"] == "done", body["error"]
    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    expected = reference(photo("coffee.png"), [s.to_dict() for s in parse_chain(chain)])
    assert result.tobytes() == expected.tobytes()
    # The files go once the row that made the job done has committed, just after the status shows.
    wait_for(lambda: not stored_tiles(system, job_id), "the tiles' files to be deleted", system)
    row = Job.objects.get(pk=job_id)
    assert set(row.tiles.values_list("result", flat=True)) == {""}
    media = Path(system.env["MEDIA_ROOT"])
    held = sum((media / str(field.name)).stat().st_size for field in (row.original, row.result))
    held += sum(path.stat().st_size for path in (media / "previews" / str(job_id)).iterdir())  # both
    assert (row.tile_bytes, row.stored_bytes) == (0, held)


def test_a_statistics_chain_drops_its_tiles_once_its_result_is_stored(api, system):
    job = submit(api, "coffee.png", STATISTICS, tile_size=128)
    assert_exact_and_its_tiles_gone(api, system, job["id"], STATISTICS)


def test_a_job_cancelled_mid_run_keeps_its_tiles_and_its_retry_finishes_exact(api, system):
    job = submit(api, "coffee.png", LONG, tile_size=32)
    url = f"{api.base}/api/jobs/{job['id']}/"
    quarter = job["tiles_total"] // 4
    wait_for(lambda: api.get(url).json()["tiles_done"] >= quarter, f"{quarter} tiles done", system)
    assert api.post(f"{url}cancel/").json()["status"] == "cancelled"
    assert len(stored_tiles(system, job["id"])) >= quarter  # kept: the retry sends only the others
    retried = api.post(f"{url}retry/")
    assert retried.status_code == 200 and retried.json()["status"] == "running"
    assert_exact_and_its_tiles_gone(api, system, job["id"], LONG)
