import uuid

from django.core.management.base import BaseCommand, CommandError

from jobs import actions
from jobs.models import Job
from jobs.submission import SubmissionError, parse_priority

VERBS = {
    "cancel": actions.cancel,
    "retry": actions.retry,
    "pause": actions.pause,
    "resume": actions.resume,
}


class Command(BaseCommand):
    help = "Act on a job as its page and the API do: cancel, retry, pause, resume, delete, or set priority."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=[*VERBS, "delete", "priority"])
        parser.add_argument("job", help="the job's id")
        parser.add_argument("priority", nargs="?", choices=["low", "normal", "high"], help="with 'priority'")

    def handle(self, *args, verb, job, priority, **options):
        found = Job.objects.filter(pk=job).first() if _uuid(job) else None
        if found is None:
            raise CommandError(f"no job {job}")
        if verb == "delete":
            actions.delete(found)
        elif verb == "priority":
            try:
                actions.prioritise(found, parse_priority(priority))
            except SubmissionError as exc:
                raise CommandError(str(exc)) from None
        elif not VERBS[verb](found):
            raise CommandError(f"job {found.pk} is {found.status}: it cannot {verb} now")
        state = "deleted" if verb == "delete" else found.status
        self.stdout.write(f"job {found.pk}: {verb} done, {state}")


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
