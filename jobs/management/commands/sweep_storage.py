from django.core.management.base import BaseCommand, CommandError

from jobs.storage import StorageUnavailable
from jobs.sweep import Sweep


class Command(BaseCommand):
    help = (
        "Check storage against the database: delete files no row names (older than "
        "SWEEP_GRACE_SECONDS), tell of rows whose files are missing, fail done jobs whose result is gone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="change nothing; say what would be done")

    def handle(self, *args, dry_run, **options):
        sweep = Sweep(dry_run=dry_run, note=self.stdout.write)
        try:
            sweep.run()
        except StorageUnavailable as exc:
            raise CommandError(f"storage unavailable, nothing more judged: {exc}") from None
        self.stdout.write(("dry run: " if dry_run else "") + sweep.summary())
