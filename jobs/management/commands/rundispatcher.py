from django.core.management.base import BaseCommand

from imagepipe.shutdown import StopFlag
from jobs.dispatch import Dispatcher


class Command(BaseCommand):
    help = "Send queued tiles to 'tasks' as the workers have room: priorities first, fair between users."

    def handle(self, *args, **options):
        Dispatcher().run(StopFlag().install())
