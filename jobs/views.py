"""Server-rendered pages: history, submit, job progress."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from rest_framework.settings import api_settings

from . import actions
from .forms import HistoryFilter, SubmitJobForm
from .models import Job
from .serializers import JobSerializer
from .throttles import SubmitRateThrottle
from .uploads import UploadError


@login_required
def history(request):
    filters = HistoryFilter(request.GET, request.user)
    jobs = filters.apply(Job.objects.visible_to(request.user).select_related("owner"))
    # As many rows as a page of GET /api/jobs/, which history.js polls to keep the first page live.
    page = Paginator(jobs, api_settings.PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"page": page, "filters": filters, "query": query.urlencode()}
    return render(request, "jobs/history.html", context)


@login_required
def submit(request):
    form = SubmitJobForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and not SubmitRateThrottle().allow_request(request, None):
        form.add_error(None, "too many submissions; wait a minute and try again")
        return render(request, "jobs/submit.html", {"form": form}, status=429)
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
        except UploadError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("job-detail", job_id=job.pk)
    status = 400 if form.errors else 200
    limits = {"tile_min": settings.TILE_SIZE_MIN, "tile_max": settings.TILE_SIZE_MAX}
    return render(request, "jobs/submit.html", {"form": form, **limits}, status=status)


@login_required
def detail(request, job_id):
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=job_id)
    return render(request, "jobs/detail.html", {"job": job, "job_data": JobSerializer(job).data})
