from django.core.management.base import BaseCommand

from pipeline import retention


class Command(BaseCommand):
    help = (
        "Delete what retention keeps no longer, a batch a transaction: jobs that ended more than "
        "JOB_RETENTION_DAYS ago and are not marked keep, with their files (once their rows have gone), "
        "and the rows of workers and collectors not seen for WORKER_RETENTION_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted; delete nothing"
        )

    def handle(self, *args, dry_run=False, **options):
        self.stdout.write(f"retention: {retention.policy()}")
        if dry_run:
            self.stdout.write(f"would delete {retention.expired()}")
        else:
            self.stdout.write(f"deleted {retention.prune()}")
