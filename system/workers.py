"""The workers, as their heartbeats describe them: the Workers page and ``/api/workers/``.

Staff see everything. Anyone else sees each worker's name, status, pace and counters, but not the
machine it runs on (host, pid) nor the job it works on unless that job is theirs.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from rest_framework import serializers, viewsets

from jobs.models import Job
from jobs.timeline import RATE_SECONDS, tiles_per_second
from pipeline.models import Worker

# What a worker did with the tasks it did not process (Worker.counters), as the page shows them.
COUNTERS = {
    "skipped": "Skipped",
    "failed": "Failed",
    "malformed": "Malformed",
    "dead_lettered": "Dead-lettered",
}


def shown_to(user, workers: list[Worker]) -> list[Worker]:
    """``workers`` as ``user`` may see them (in place): for anyone but staff, no host and no pid,
    and a current job only if it is theirs."""
    if user.is_staff:
        return workers
    # A heartbeat's current job is a job id, or empty (pipeline.messages refuses anything else).
    named = {worker.current_job for worker in workers if worker.current_job}
    theirs = {str(pk) for pk in Job.objects.filter(owner=user, pk__in=named).values_list("pk", flat=True)}
    for worker in workers:
        worker.host, worker.pid = "", 0
        if worker.current_job not in theirs:
            worker.current_job = ""
    return workers


@login_required
def worker_list(request):
    rates = tiles_per_second()
    workers = shown_to(request.user, list(Worker.objects.order_by("id")))
    for worker in workers:
        worker.tiles_per_second = rates.get(worker.id, 0.0)
        worker.counts = [worker.counters.get(name, 0) for name in COUNTERS]
    return render(request, "system/workers.html", {"workers": workers, "counters": COUNTERS})


class WorkerSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    seconds_since_seen = serializers.SerializerMethodField()
    tiles_per_second = serializers.SerializerMethodField(
        help_text=f"tiles recorded in the last {RATE_SECONDS} s, per second"
    )

    class Meta:
        model = Worker
        fields = [
            "id",
            "host",
            "pid",
            "status",
            "first_seen",
            "last_seen",
            "seconds_since_seen",
            "tiles_done",
            "tiles_per_second",
            "current_job",
            "partitions",
            "counters",
        ]

    def get_seconds_since_seen(self, worker: Worker) -> float:
        """By the server's clock, so a browser's own clock cannot make it wrong."""
        return round((timezone.now() - worker.last_seen).total_seconds(), 1)

    def get_tiles_per_second(self, worker: Worker) -> float:
        return round(self.context["rates"].get(worker.id, 0.0), 1)


class WorkerViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Worker.objects.order_by("id")  # a row keeps its place from one poll to the next
    serializer_class = WorkerSerializer

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else shown_to(self.request.user, list(page))

    def get_object(self):
        return shown_to(self.request.user, [super().get_object()])[0]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "rates": tiles_per_second()}
