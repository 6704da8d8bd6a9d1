from django.core.management.base import BaseCommand, CommandError

from imagepipe import needs
from pipeline.messages import TEXT
from pipeline.shutdown import StopFlag
from pipeline.worker import TileWorker, default_worker_id


class Command(BaseCommand):
    help = "Process tiles from the Kafka 'tasks' topic until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--id", help="worker id (default: WORKER_ID or <host>-<pid>)")

    def handle(self, *args, **options):
        needs.require("worker", CommandError)
        worker_id = options["id"] or default_worker_id()
        if len(worker_id) > TEXT or "\x00" in worker_id:
            # Its heartbeats would be refused as malformed: it would work on, never seen.
            raise CommandError(f"a worker id is at most {TEXT} characters, without NUL")
        TileWorker(worker_id).run(StopFlag().install())
