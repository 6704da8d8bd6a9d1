from django import forms


class SubmitJobForm(forms.Form):
    image = forms.FileField()
    operations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        initial='[{"op": "gaussian_blur", "radius": 4}]',
        help_text='JSON list, e.g. [{"op": "grayscale"}, {"op": "gaussian_blur", "radius": 4}]',
    )
    tile_size = forms.IntegerField(required=False, initial=512)
