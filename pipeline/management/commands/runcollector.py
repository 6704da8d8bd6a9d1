from django.core.management.base import BaseCommand, CommandError

from imagepipe import needs
from pipeline.collector import ResultCollector
from pipeline.shutdown import StopFlag


class Command(BaseCommand):
    help = "Consume 'results' and 'heartbeats': record tiles, assemble images, push progress."

    def handle(self, *args, **options):
        needs.require("collector", CommandError)
        ResultCollector().run(StopFlag().install())
