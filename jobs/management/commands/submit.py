import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from jobs import actions
from jobs.models import Job
from jobs.uploads import UploadError


def parse_op(text: str) -> dict:
    """``gaussian_blur:radius=4`` or ``unsharp_mask:radius=2,percent=120`` -> a chain step."""
    name, _, args = text.partition(":")
    step: dict = {"op": name.strip()}
    for pair in filter(None, args.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--op {text!r}: parameters are key=value, separated by commas")
        try:
            step[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise CommandError(f"--op {text!r}: {key} must be a number") from None
    return step


def bar(job: Job, width: int = 30) -> str:
    filled = width * job.tiles_done // max(job.tiles_total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {job.tiles_done}/{job.tiles_total} tiles  {job.status}"


class Command(BaseCommand):
    help = "Submit an image as a job for a user; with --wait, show progress until it is done."

    def add_arguments(self, parser):
        parser.add_argument("image", type=Path)
        parser.add_argument("--op", action="append", required=True, help="name[:key=value,...], repeatable")
        parser.add_argument("--user", required=True, help="the job's owner (username)")
        parser.add_argument("--tile-size", type=int)
        parser.add_argument("--output-format")
        parser.add_argument("--quality", type=int)
        parser.add_argument("--priority", choices=["low", "normal", "high"], help="normal by default")
        parser.add_argument("--wait", action="store_true", help="wait for the job and print the result path")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (3600)")

    def handle(self, *args, image, op, user, tile_size, output_format, quality, priority, wait, timeout, **_):
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
            except UploadError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"job {job.pk}: {job.tiles_total} tiles of {job.tile_size} px, {job.width}×{job.height}"
        )
        if wait:
            self.wait(job, timeout)

    def wait(self, job: Job, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while job.status not in Job.TERMINAL:
            if time.monotonic() > deadline:
                raise CommandError(f"job {job.pk} is still {job.status} after {timeout:.0f} s")
            self.stdout.write("\r" + bar(job), ending="")
            sys.stdout.flush()
            time.sleep(0.2)
            job.refresh_from_db()
        self.stdout.write("\r" + bar(job))
        if job.status != Job.Status.DONE:
            raise CommandError(f"job {job.pk} {job.status}: {job.error}")
        try:
            self.stdout.write(job.result.path)
        except NotImplementedError:  # object storage: no local path
            self.stdout.write(job.result.name)
