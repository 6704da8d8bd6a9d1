from django import forms

from imagepipe.core.output import FORMATS

from .models import Job


class SubmitJobForm(forms.Form):
    image = forms.FileField(allow_empty_file=True)  # jobs.uploads says why a file is refused
    operations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial='[{"op": "gaussian_blur", "radius": 4}]',
        help_text='JSON list, e.g. [{"op": "grayscale"}, {"op": "gaussian_blur", "radius": 4}]',
    )
    tile_size = forms.IntegerField(required=False, initial=512)
    output_format = forms.ChoiceField(
        choices=[(name, name) for name in FORMATS], initial="png", required=False
    )
    quality = forms.IntegerField(required=False, help_text="jpeg (default 90) and webp (lossless if empty)")
    priority = forms.ChoiceField(
        choices=[(p.label.lower(), p.label) for p in Job.Priority], initial="normal", required=False
    )


class HistoryFilter(forms.Form):
    """The history page's filters: status, created between two dates, file name contains."""

    status = forms.ChoiceField(
        required=False, choices=[("", "any status")] + [(s, s) for s in Job.Status.values]
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="file name")

    def apply(self, jobs):
        if not self.is_valid():
            return jobs
        data = self.cleaned_data
        lookups = {
            "status": data["status"],
            "created_at__date__gte": data["since"],
            "created_at__date__lte": data["until"],
            "original_name__icontains": data["q"],
        }
        return jobs.filter(**{key: value for key, value in lookups.items() if value})
