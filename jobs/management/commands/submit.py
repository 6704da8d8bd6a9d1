"""`manage.py submit`: a job from the command line; with --wait, its progress until it ends."""

import argparse
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.urls import reverse
from django.utils import timezone

from imagepipe.core.operations import OPERATIONS, Param
from imagepipe.core.output import DEFAULT_JPEG_QUALITY, FORMATS
from jobs import actions
from jobs.models import Job
from jobs.remote import Remote, RemoteError
from jobs.submission import SubmissionError


def parse_op(text: str) -> dict:
    """``gaussian_blur:radius=4`` or ``unsharp_mask:radius=2,percent=120`` -> a chain step."""
    name, _, args = text.partition(":")
    step: dict = {"op": name.strip()}
    for pair in filter(None, args.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--op {text!r}: parameters are key=value, separated by commas")
        key, value = key.strip(), value.strip()
        known = OPERATIONS.get(step["op"])
        if known and any(param.name == key and param.kind is str for param in known.params):
            step[key] = value  # a name (a filter, an aspect) or a colour
            continue
        try:
            step[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            raise CommandError(f"--op {text!r}: {key} must be a number") from None
    return step


def param_help(param: Param) -> str:
    """``radius=2 (0–50)``: a parameter's default and what it may be."""
    if param.choices:
        allowed = ", ".join(map(str, param.choices))
    elif param.pattern:
        allowed = param.pattern_help
    else:
        allowed = f"{'odd, ' if param.odd else ''}{param.minimum:g}–{param.maximum:g}"
    if param.default is None:
        default = "required"
    else:
        default = param.default if isinstance(param.default, str) else f"{param.default:g}"
    return f"{param.name}={default} ({allowed})"


def catalogue_help() -> str:
    """What --help lists after the options: every operation with its parameters, and the formats."""
    lines = ["operations (--op NAME[:PARAM=VALUE,...]; a parameter left out takes the value shown):"]
    for op in OPERATIONS.values():
        lines.append(f"  {op.name:<16} {op.description}")
        if op.params:
            lines.append(f"  {'':<16} {'  '.join(param_help(p) for p in op.params)}")
    lines += [
        "",
        f"output formats (--output-format): {', '.join(FORMATS)}; png when not given.",
        f"--quality 1–100: jpeg, avif and heic ({DEFAULT_JPEG_QUALITY} when not given), "
        "webp (lossless when not given).",
    ]
    return "\n".join(lines)


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of options, with the catalogue's lines kept as they are written."""


def clock(seconds: float) -> str:
    """``4.2 s`` under a minute, ``1:05`` above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def seconds_left(job: Job, now: datetime) -> float | None:
    """At the pace tiles have come in since the first one started; None until there is a pace."""
    if job.status != Job.Status.RUNNING or not job.started_at or not job.tiles_done:
        return None
    spent = (now - job.started_at).total_seconds()
    return spent * (job.tiles_total - job.tiles_done) / job.tiles_done


def bar(job: Job, now: datetime, width: int = 30) -> str:
    filled = width * job.tiles_done // max(job.tiles_total, 1)
    line = f"[{'#' * filled}{'.' * (width - filled)}] {job.tiles_done}/{job.tiles_total} tiles  {job.status}"
    line += f"  {clock(((job.finished_at or now) - job.created_at).total_seconds())} elapsed"
    left = seconds_left(job, now)
    return line if left is None else f"{line}, about {clock(left)} left"


@contextmanager
def without_info_logs() -> Iterator[None]:
    """The bar says how the job goes; the INFO lines settings.LOGGING lets through would break it up
    (warnings, such as a dropped ICC profile, still show)."""
    before = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(before)


class Command(BaseCommand):
    help = (
        "Submit an image as a job for a user and print the job's page; with --wait, show its progress "
        "until it ends, then the result's path. With --server, from any machine through the API."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, formatter_class=HelpFormatter, epilog=catalogue_help(), **kwargs
        )

    def add_arguments(self, parser):
        parser.add_argument("image", type=Path)
        parser.add_argument(
            "--op",
            action="append",
            required=True,
            help="NAME[:PARAM=VALUE,...], repeatable, in order (below)",
        )
        parser.add_argument("--user", help="the job's owner (username); with --server, the token's")
        parser.add_argument(
            "--server",
            help="submit through this ImagePipe's API (https://host) from any machine, as a resumable "
            "upload that goes on after a dropped connection (and when run again); needs --token",
        )
        parser.add_argument(
            "--token",
            default=os.environ.get("IMAGEPIPE_TOKEN"),
            help="the API token for --server (POST /api/auth/token/); IMAGEPIPE_TOKEN when not given",
        )
        parser.add_argument(
            "--tile-size",
            type=int,
            help=f"tile edge in pixels, {settings.TILE_SIZE_MIN}–{settings.TILE_SIZE_MAX} "
            f"({settings.TILE_SIZE_DEFAULT} when not given)",
        )
        parser.add_argument("--output-format", choices=list(FORMATS), help="png when not given")
        parser.add_argument("--quality", type=int, help="1–100, jpeg, webp, avif and heic only")
        parser.add_argument("--priority", choices=["low", "normal", "high"], help="normal by default")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="show the job's progress (tiles, time elapsed and left) until it ends, then the result",
        )
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (3600)")

    def handle(self, *args, **options):
        with without_info_logs():
            if options["server"]:
                self.submit_remotely(**options)
            else:
                self.submit(**options)

    def submit_remotely(self, *, image, op, server, token, wait, timeout, **fields):
        if not token:
            raise CommandError("--server needs an API token: --token or IMAGEPIPE_TOKEN")
        if not image.is_file():
            raise CommandError(f"no such file: {image}")
        remote = Remote(server, token, note=self.stderr.write)
        asked = {"operations": [parse_op(o) for o in op]}
        settings_asked = ("tile_size", "output_format", "quality", "priority")
        asked |= {name: fields[name] for name in settings_asked if fields[name]}
        try:
            job = remote.submit(remote.upload(image), asked)
            self.stdout.write(
                f"job {job['id']}: {job['tiles_total']} tiles of {job['tile_size']} px, "
                f"{job['width']}×{job['height']}"
            )
            self.stdout.write(f"{remote.server}/jobs/{job['id']}/")
            for note in job.get("warnings", []):
                self.stderr.write(f"note: {note}")
            if wait:
                ended = self.wait(lambda: remote.job(job["id"]), timeout)
                self.stdout.write(f"{remote.server}/api/jobs/{ended.pk}/result/")
        except RemoteError as exc:
            raise CommandError(str(exc)) from None

    def submit(self, *, image, op, user, tile_size, output_format, quality, priority, wait, timeout, **_):
        if not user:
            raise CommandError("--user is required (or --server, to submit through the API)")
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user {user!r}")
        if not image.is_file():
            raise CommandError(f"no such file: {image}")
        with image.open("rb") as handle:
            try:
                job = actions.submit(
                    owner,
                    File(handle, name=image.name),
                    [parse_op(o) for o in op],
                    tile_size,
                    output_format,
                    quality,
                    priority,
                )
            except SubmissionError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"job {job.pk}: {job.tiles_total} tiles of {job.tile_size} px, {job.width}×{job.height}"
        )
        self.stdout.write(settings.SITE_URL + reverse("job-detail", args=[job.pk]))
        for note in job.notes:
            self.stderr.write(f"note: {note}")
        if not wait:
            return
        job = self.wait(lambda: Job.objects.get(pk=job.pk), timeout)
        try:
            self.stdout.write(job.result.path)
        except NotImplementedError:  # object storage: no local path
            self.stdout.write(cast(str, job.result.name))  # a done job has its result

    def wait(self, latest: Callable[[], Job], timeout: float) -> Job:
        """Show the job's progress (``latest()``: the job as it is now) until it ends; the done job."""
        deadline = time.monotonic() + timeout
        job = latest()
        while job.status not in Job.TERMINAL:
            self.stdout.write("\r" + bar(job, timezone.now()).ljust(80), ending="")
            self.stdout.flush()
            if time.monotonic() > deadline:
                self.stdout.write("")  # ends the bar's line
                raise CommandError(f"job {job.pk} is still {job.status} after {timeout:g} s")
            time.sleep(0.2)
            job = latest()
        self.stdout.write("\r" + bar(job, timezone.now()).ljust(80))
        if job.status != Job.Status.DONE:
            raise CommandError(f"job {job.pk} {job.status}: {job.error}")
        return job
