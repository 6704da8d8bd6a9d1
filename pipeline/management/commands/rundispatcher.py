from django.core.management.base import BaseCommand, CommandError

from imagepipe import needs
from pipeline.dispatch import Dispatcher
from pipeline.shutdown import StopFlag


class Command(BaseCommand):
    help = (
        "Send queued tiles to 'tasks' as the workers have room (priorities first, fair between users), "
        "tell the workers of cancellations, assemble retried jobs whose tiles are all in."
    )

    def handle(self, *args, **options):
        needs.require("dispatcher", CommandError)
        Dispatcher().run(StopFlag().install())
