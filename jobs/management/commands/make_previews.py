from django.core.management.base import BaseCommand

from jobs import previews
from jobs.models import Job


class Command(BaseCommand):
    help = (
        "Make the previews jobs lack from their stored files (jobs from before the pipeline made them "
        "with the job): a JPEG decoded at a fraction of its size, any other format decoded and reduced."
    )

    def handle(self, *args, **options):
        made = failed = 0
        for job in Job.objects.order_by("created_at").iterator():
            for which in ("original", "result") if job.status == Job.Status.DONE else ("original",):
                if previews.is_stored(job, which):
                    continue
                if previews.from_file(job, which):
                    made += 1
                else:
                    failed += 1
                    self.stderr.write(f"job {job.pk}: the {which}'s previews could not be made (see the log)")
        self.stdout.write(f"{made} made, {failed} could not be")
