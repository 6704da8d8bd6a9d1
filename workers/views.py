from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .models import Worker


@login_required
def worker_list(request):
    return render(request, "workers/list.html", {"workers": Worker.objects.all()})
