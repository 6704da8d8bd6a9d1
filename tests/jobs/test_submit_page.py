"""The submit page's server side: the tile size's limits, and "run again with this chain" (?from=)."""

import json

import pytest

from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db


def test_the_tile_size_carries_the_servers_limits(client, alice, settings):
    settings.TILE_SIZE_MIN, settings.TILE_SIZE_MAX, settings.TILE_SIZE_DEFAULT = 32, 1024, 256
    client.force_login(alice)
    page = client.get("/jobs/new/").content.decode()
    assert '<input type="number" name="tile_size" value="256" min="32" max="1024" required' in page


def test_a_jobs_chain_and_settings_fill_the_form(client, alice):
    chain = [{"op": "median", "size": 5}, {"op": "gaussian_blur", "radius": 1.5}]
    job = make_job(alice, noise(40, 40), chain, tile_size=32, output_format="webp", quality=80)
    client.force_login(alice)
    response = client.get(f"/jobs/new/?from={job.pk}")
    form = response.context["form"]
    assert json.loads(form["operations"].value()) == chain
    assert (form["tile_size"].value(), form["output_format"].value(), form["quality"].value()) == (
        32,
        "webp",
        80,
    )
    assert f'<a href="/jobs/{job.pk}/">photo.png</a>' in response.content.decode()


def test_only_a_job_the_user_may_see_fills_the_form(client, alice, bob, staff):
    job = make_job(alice, noise(40, 40))
    client.force_login(bob)
    assert client.get(f"/jobs/new/?from={job.pk}").status_code == 404
    assert client.get("/jobs/new/?from=not-a-job").status_code == 404
    client.force_login(staff)
    assert client.get(f"/jobs/new/?from={job.pk}").status_code == 200


def test_only_staff_are_offered_high_priority(client, alice, staff):
    client.force_login(alice)
    offered = client.get("/jobs/new/").context["form"].fields["priority"].choices
    assert [value for value, _ in offered] == ["low", "normal"]
    client.force_login(staff)
    offered = client.get("/jobs/new/").context["form"].fields["priority"].choices
    assert [value for value, _ in offered] == ["low", "normal", "high"]
