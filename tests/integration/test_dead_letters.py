"""Tasks the workers give up on, seen by staff: the failed tile's story and the dead-letter topic."""

import re

import pytest
from playwright.sync_api import expect

from pipeline import kafka
from pipeline.messages import Task
from tests.topics import signed_for

from .browser import logged_in, serious_violations, shoot
from .conftest import token_session, wait_for, wait_until_finished
from .test_faults import LOST, lost_job

pytestmark = pytest.mark.integration


def produce(value: bytes, key: str) -> str:
    """Put one task on ``tasks``; where it landed, as a dead letter's ``source`` names it."""
    landed = []
    producer = kafka.producer()
    producer.produce(
        kafka.topic(kafka.TASKS),
        value,
        key=key,
        on_delivery=lambda err, msg: landed.append(msg),
        headers=signed_for(kafka.TASKS, key, value),
    )
    producer.flush(10)
    return kafka.where(landed[0])


@pytest.fixture
def parked(api, system, settings, staff):
    """A task that fails on every attempt (torn pixels) and one that is not a task at all, both
    sent to the real workers, which park them on tasks.dlq; the failing task's job fails."""
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    job = lost_job(system, settings, [{"op": "invert"}], 64)
    core = [0, 0, 64, 64]
    task = Task(str(job.pk), 0, core, core, [600, 400], [{"op": "invert"}], nonce=LOST)
    broken = task.encode(b"IPT1 torn pixels")
    sources = {"failing": produce(broken, f"{job.pk}:0"), "malformed": produce(b"no task here", "junk")}
    assert wait_until_finished(api, system, str(job.pk))["status"] == "failed"
    staff_api = token_session(system.url, "staff", "staff-pass")

    def listed():
        messages = staff_api.get(f"{system.url}/api/dead-letters/").json()["messages"]
        mine = {m["source"]: m for m in messages if m["source"] in sources.values()}
        return mine if len(mine) == 2 else None

    mine = wait_for(listed, "both tasks on the dead-letter topic", system)
    return job, {name: mine[source] for name, source in sources.items()}


def test_staff_see_both_parked_tasks_with_their_reasons_through_the_api(api, parked):
    job, letters = parked
    failing, malformed = letters["failing"], letters["malformed"]
    assert failing["reason"].startswith("failed 3 times: CodecError")
    assert (failing["job"], failing["stage"], failing["index"]) == (str(job.pk), 0, 0)
    assert failing["job_url"] == f"/jobs/{job.pk}/" and "-worker-" in failing["worker"]
    assert malformed["reason"].startswith("malformed task: ") and malformed["undecodable"]
    assert malformed["job_url"] is None and malformed["size"] == len(b"no task here")

    tile = api.get(f"{api.base}/api/jobs/{job.pk}/tiles/0/0/").json()  # the owner sees the tile's story
    assert (tile["state"], tile["worker"], tile["error"]) == ("failed", failing["worker"], failing["reason"])
    assert tile["finished_at"] and tile["duration_ms"] is not None


def test_staff_see_the_dead_letters_page_and_others_are_refused(api, parked, system, chromium):
    job, letters = parked
    page = logged_in(chromium, system, "staff", "staff-pass")
    page.goto(f"{system.url}/dead-letters/")
    failing = page.locator(f'#dead-letters tr[data-offset="{letters["failing"]["offset"]}"]').filter(
        has_text=str(job.pk)
    )
    expect(failing).to_contain_text("failed 3 times: CodecError")
    expect(failing.get_by_role("link", name=str(job.pk))).to_have_attribute("href", f"/jobs/{job.pk}/")
    expect(page.locator("#dead-letters tr", has_text=letters["malformed"]["source"])).to_contain_text(
        "undecodable: "
    )
    assert serious_violations(page) == []
    shoot(page, "dead-letters")
    page.context.close()

    page = logged_in(chromium, system, "alice", "alice-pass")
    response = page.goto(f"{system.url}/dead-letters/")
    assert response is not None and response.status == 403
    assert api.get(f"{api.base}/api/dead-letters/").status_code == 403
    page.context.close()


def test_the_owner_sees_the_failed_tile_in_the_mosaic_and_its_error_in_the_tile_panel(
    parked, system, chromium
):
    job, letters = parked
    page = logged_in(chromium, system, "alice", "alice-pass")
    page.goto(f"{system.url}/jobs/{job.pk}/")
    failed = page.locator('#mosaic .tile.failed[data-index="0"]')
    expect(failed).to_have_attribute("aria-label", re.compile(r"^tile 0: failed by \S+-worker-"))
    expect(page.locator("#mosaic-summary")).to_contain_text("1 failed")
    failed.click()
    panel = page.locator("#tile-detail")
    expect(panel).to_contain_text("Statefailed")
    expect(panel).to_contain_text(f"Error{letters['failing']['reason']}")
    expect(panel).to_contain_text(re.compile(r"Partition / offset\d+ / \d+"))  # where the task was read
    assert serious_violations(page) == []
