from django.core.management.base import BaseCommand

from pipeline.collector import ResultCollector
from pipeline.shutdown import StopFlag


class Command(BaseCommand):
    help = "Consume 'results' and 'heartbeats': record tiles, assemble images, push progress."

    def handle(self, *args, **options):
        ResultCollector().run(StopFlag().install())
