from django import forms

from imagepipe.core.output import FORMATS


class SubmitJobForm(forms.Form):
    image = forms.FileField()
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
