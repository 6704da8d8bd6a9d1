"""`manage.py submit`: a job from the command line."""

import io
import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from imagepipe.core.operations import OPERATIONS
from imagepipe.core.output import FORMATS
from jobs.management.commands.submit import Command, bar, clock, parse_op, without_info_logs
from jobs.models import Job
from tests.images import DATA


@pytest.mark.parametrize(
    "text,step",
    [
        ("grayscale", {"op": "grayscale"}),
        ("gaussian_blur:radius=4", {"op": "gaussian_blur", "radius": 4}),
        ("unsharp_mask:radius=1.5,percent=120", {"op": "unsharp_mask", "radius": 1.5, "percent": 120}),
        ("resize:width=300,filter=lanczos", {"op": "resize", "width": 300, "filter": "lanczos"}),
    ],
)
def test_op_arguments_become_chain_steps(text, step):
    assert parse_op(text) == step


@pytest.mark.parametrize("text", ["gaussian_blur:radius", "gaussian_blur:radius=big", "resize:width=wide"])
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


@pytest.mark.django_db
def test_it_prints_the_jobs_page_under_the_site_url(alice, settings):
    settings.SITE_URL = "https://pipe.example.org"
    out = io.StringIO()
    call_command("submit", str(DATA / "coffee.png"), "--op=invert", "--user=alice", stdout=out)
    job = Job.objects.get()
    assert out.getvalue().splitlines()[1] == f"https://pipe.example.org/jobs/{job.pk}/"


@pytest.mark.django_db
def test_waiting_draws_the_bar_with_the_time_elapsed(alice):
    out = io.StringIO()
    with pytest.raises(CommandError, match="is still queued"):
        call_command(
            "submit",
            str(DATA / "coffee.png"),
            "--op=invert",
            "--user=alice",
            "--wait",
            "--timeout=0",
            stdout=out,
        )
    assert "] 0/2 tiles  queued  0.0 s elapsed" in out.getvalue()


def test_help_lists_the_operations_with_their_parameters_and_the_formats():
    text = Command().create_parser("manage.py", "submit").format_help()
    for name, op in OPERATIONS.items():
        assert f"  {name:<16} {op.description}" in text
    assert "radius=2 (0–50)" in text and "percent=150 (0–500)" in text
    assert "size=3 (odd, 3–15)" in text and "angle=90 (90, 180, 270)" in text
    assert f"output formats (--output-format): {', '.join(FORMATS)}" in text


def test_the_bar_shows_the_time_elapsed_and_left_at_the_pace_so_far():
    now = timezone.now()
    job = Job(tiles_total=12, tiles_done=4, status=Job.Status.RUNNING)
    job.created_at, job.started_at = now - timedelta(seconds=10), now - timedelta(seconds=8)
    assert bar(job, now, width=12) == "[####........] 4/12 tiles  running  10.0 s elapsed, about 16.0 s left"
    job.status = Job.Status.ASSEMBLING  # no pace to go by: nothing said about what is left
    assert bar(job, now, width=12).endswith("assembling  10.0 s elapsed")
    assert (clock(59.94), clock(75), clock(3600)) == ("59.9 s", "1:15", "60:00")


def test_info_lines_are_held_back_while_it_runs_and_warnings_are_not(caplog):
    caplog.set_level(logging.INFO)
    with without_info_logs():
        logging.getLogger("pipeline.dispatch").info("job 1: stage 2 of 2 queued")
        logging.getLogger("jobs.uploads").warning("dropped an ICC profile")
    logging.getLogger("pipeline.dispatch").info("after the command")
    assert [r.getMessage() for r in caplog.records] == ["dropped an ICC profile", "after the command"]
