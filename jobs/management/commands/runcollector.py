from django.core.management.base import BaseCommand

from imagepipe.shutdown import StopFlag
from jobs import collector


class Command(BaseCommand):
    help = "Consume 'results' and 'heartbeats': record tiles, assemble images, push progress."

    def handle(self, *args, **options):
        collector.run(StopFlag().install())
