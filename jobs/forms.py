import json
from typing import cast

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from imagepipe.core.operations import OPERATIONS
from imagepipe.core.output import FORMATS

from .models import Job, UserLimits


class SubmitJobForm(forms.Form):
    image = forms.FileField(allow_empty_file=True)  # jobs.uploads says why a file is refused
    operations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial='[{"op": "gaussian_blur", "radius": 4}]',
        help_text='JSON list, e.g. [{"op": "grayscale"}, {"op": "gaussian_blur", "radius": 4}]',
    )
    tile_size = forms.IntegerField(required=False)
    output_format = forms.ChoiceField(
        choices=[(name, name) for name in FORMATS], initial="png", required=False
    )
    quality = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="jpeg, avif, heic (default 90) and webp (lossless if empty)",
    )
    priority = forms.ChoiceField(
        choices=[(p.label.lower(), p.label) for p in Job.Priority], initial="normal", required=False
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is None or not UserLimits.may_ask_high(user):  # high goes before everyone's jobs
            priority = cast(forms.ChoiceField, self.fields["priority"])
            priority.choices = [(p.label.lower(), p.label) for p in Job.Priority if p != Job.Priority.HIGH]
        # Read per form, not at import, so the page always shows the limits the server applies.
        tile_size = self.fields["tile_size"]
        tile_size.initial = settings.TILE_SIZE_DEFAULT
        tile_size.widget.attrs.update(min=settings.TILE_SIZE_MIN, max=settings.TILE_SIZE_MAX, required=True)

    @staticmethod
    def initial_from(job: Job) -> dict:
        """The form filled with a job's chain and output settings, to run them on another image."""
        return {
            "operations": json.dumps(job.operations),
            "tile_size": job.tile_size,
            "output_format": job.output_format,
            "quality": job.output_quality,
        }


class HistoryFilter(forms.Form):
    """The history's filters, for the page and ``GET /api/jobs/`` alike: status, created between two
    dates, file name contains, chain contains an operation; for staff also whose jobs (theirs or all,
    one owner). Other users never get the owner fields: their jobs are all they can see anyway."""

    status = forms.ChoiceField(
        required=False, choices=[("", "any status")] + [(s, s) for s in Job.Status.values]
    )
    op = forms.ChoiceField(
        required=False, label="Operation", choices=[("", "any operation")] + [(n, n) for n in OPERATIONS]
    )
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="File name")
    scope = forms.ChoiceField(
        required=False, label="Jobs", choices=[("all", "everyone's"), ("mine", "mine")], initial="all"
    )
    owner = forms.ModelChoiceField(
        required=False,
        queryset=get_user_model().objects.filter(jobs__isnull=False).distinct().order_by("username"),
        to_field_name="username",
        empty_label="any owner",
    )

    def __init__(self, data, user):
        super().__init__(data, label_suffix="")
        self.user = user
        if not user.is_staff:
            del self.fields["scope"], self.fields["owner"]

    def apply(self, jobs):
        """``jobs`` (already what the user may see) narrowed by the valid filters."""
        if not self.is_valid():
            return jobs
        data = self.cleaned_data
        lookups = {
            "status": data["status"],
            "operations__contains": [{"op": data["op"]}] if data["op"] else None,
            "created_at__date__gte": data["since"],
            "created_at__date__lte": data["until"],
            "original_name__icontains": data["q"],
            "owner": self.user if data.get("scope") == "mine" else data.get("owner"),
        }
        return jobs.filter(**{key: value for key, value in lookups.items() if value})
