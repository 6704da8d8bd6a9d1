from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from jobs.timeline import tiles_per_second

from .models import Worker


@login_required
def worker_list(request):
    rates = tiles_per_second()
    workers = Worker.objects.order_by("id")
    for worker in workers:
        worker.tiles_per_second = rates.get(worker.id, 0.0)
        worker.counts = [worker.counters.get(name, 0) for name in COUNTERS]
    return render(request, "workers/list.html", {"workers": workers, "counters": COUNTERS})


# What a worker did with the tasks it did not process (Worker.counters), as the page shows them.
COUNTERS = {
    "skipped": "Skipped",
    "failed": "Failed",
    "malformed": "Malformed",
    "dead_lettered": "Dead-lettered",
}
