from django.core.management.base import BaseCommand

from pipeline.dispatch import Dispatcher
from pipeline.shutdown import StopFlag


class Command(BaseCommand):
    help = (
        "Send queued tiles to 'tasks' as the workers have room (priorities first, fair between users), "
        "tell the workers of cancellations, assemble retried jobs whose tiles are all in."
    )

    def handle(self, *args, **options):
        Dispatcher().run(StopFlag().install())
