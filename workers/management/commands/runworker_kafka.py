from django.core.management.base import BaseCommand

from imagepipe.signals import StopFlag
from workers.worker import TileWorker


class Command(BaseCommand):
    help = "Process tiles from the Kafka 'tasks' topic until SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--id", help="worker id (default: WORKER_ID or <host>-<pid>)")

    def handle(self, *args, **options):
        TileWorker(options["id"]).run(StopFlag().install())
