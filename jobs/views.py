"""Server-rendered pages: history, submit, job progress."""

import uuid
from typing import cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from rest_framework.settings import api_settings

from . import actions
from .forms import HistoryFilter, SubmitJobForm
from .models import Job
from .serializers import JobSerializer
from .submission import SubmissionError
from .throttles import SubmitRateThrottle


@login_required
def history(request):
    filters = HistoryFilter(request.GET, request.user)
    jobs = filters.apply(Job.objects.visible_to(request.user).select_related("owner"))
    # As many rows as a page of GET /api/jobs/, which history.js polls to keep the first page live
    # (REST_FRAMEWORK sets PAGE_SIZE, whose type allows None).
    page = Paginator(jobs, cast(int, api_settings.PAGE_SIZE)).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"page": page, "filters": filters, "query": query.urlencode()}
    return render(request, "jobs/history.html", context)


@login_required
def submit(request):
    source = rerun_source(request)
    initial = SubmitJobForm.initial_from(source) if source else {}
    form = SubmitJobForm(request.POST or None, request.FILES or None, initial=initial, user=request.user)
    context = {"form": form, "source": source, "chunk_bytes": settings.UPLOAD_CHUNK_BYTES}
    # No API view here: the throttle keys on the request's user alone.
    if request.method == "POST" and not SubmitRateThrottle().allow_request(request, None):  # type: ignore[arg-type]
        form.add_error(None, "too many submissions; wait a minute and try again")
        return render(request, "jobs/submit.html", context, status=429)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = actions.submit(
                request.user,
                data["image"],
                data["operations"],
                data["tile_size"],
                data["output_format"],
                data["quality"],
                data["priority"],
            )
        except SubmissionError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("job-detail", job_id=job.pk)
    return render(request, "jobs/submit.html", context, status=400 if form.errors else 200)


def rerun_source(request) -> Job | None:
    """The job named by ``?from=<id>`` ("run again with this chain"), if the user may see it."""
    raw = request.GET.get("from")
    if not raw:
        return None
    try:
        job_id = uuid.UUID(raw)
    except ValueError:
        raise Http404("no such job") from None
    return get_object_or_404(Job.objects.visible_to(request.user), pk=job_id)


@login_required
def detail(request, job_id):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=job_id)
    context = {
        "job": job,
        "job_data": JobSerializer(job).data,
        "stages": job.stage_operations(),
        "input_size": (job.width, job.height),
        "output_size": job.output_size,
        # Original and result side by side under one slider only where each pixel stays put.
        "comparable": not job.moves_pixels,
        "retention_days": settings.JOB_RETENTION_DAYS,
        # Big enough for the collector to make pyramids of (pipeline.pyramids).
        "zoomable": 0 < settings.PYRAMID_MIN_PIXELS <= job.width * job.height,
        "mosaic_buttons_max": settings.MOSAIC_BUTTONS_MAX,  # beyond, the mosaic is drawn on a canvas
    }
    return render(request, "jobs/detail.html", context)
