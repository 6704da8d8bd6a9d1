"""`manage.py submit`: a job from the command line."""

import io

import pytest
from django.core.management import CommandError, call_command

from jobs.management.commands.submit import parse_op
from jobs.models import Job
from tests.images import DATA


@pytest.mark.parametrize(
    "text,step",
    [
        ("grayscale", {"op": "grayscale"}),
        ("gaussian_blur:radius=4", {"op": "gaussian_blur", "radius": 4}),
        ("unsharp_mask:radius=1.5,percent=120", {"op": "unsharp_mask", "radius": 1.5, "percent": 120}),
    ],
)
def test_op_arguments_become_chain_steps(text, step):
    assert parse_op(text) == step


@pytest.mark.parametrize("text", ["gaussian_blur:radius", "gaussian_blur:radius=big"])
def test_malformed_op_arguments_are_refused(text):
    with pytest.raises(CommandError):
        parse_op(text)


@pytest.mark.django_db
def test_it_creates_a_job_for_the_user(alice):
    out = io.StringIO()
    call_command(
        "submit",
        str(DATA / "coffee.png"),
        "--op=gaussian_blur:radius=4",
        "--op=grayscale",
        "--user=alice",
        "--tile-size=200",
        stdout=out,
    )
    job = Job.objects.get()
    assert job.owner == alice and job.tiles_total == 6
    assert job.operations == [{"op": "gaussian_blur", "radius": 4.0}, {"op": "grayscale"}]
    assert out.getvalue().startswith(f"job {job.pk}: 6 tiles of 200 px")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--user", "nobody", "--op", "grayscale"], "no user 'nobody'"),
        (["--user", "alice", "--op", "melt"], "unknown operation 'melt'"),
    ],
)
def test_bad_submissions_are_clear_errors(alice, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("submit", str(DATA / "coffee.png"), *arguments)
    assert not Job.objects.exists()
