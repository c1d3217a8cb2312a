from __future__ import annotations

from collections.abc import Sequence

from django import forms

from semantic.compiler.spec import DIALECTS
from semantic.models import GRAIN_CHOICES, AuditResult, ComputeRun

EXPLORE_MAX_ROWS = 10_000


class ExploreForm(forms.Form):
    metrics = forms.MultipleChoiceField(choices=[])
    group_by = forms.MultipleChoiceField(choices=[], required=False)
    where = forms.CharField(
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "code"}),
        help_text="one filter per line, e.g. {{ Dimension('account__plan') }} = 'pro'",
    )
    start_time = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end_time = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    order_by = forms.CharField(
        required=False, max_length=500, help_text="comma-separated; -x = descending"
    )
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=EXPLORE_MAX_ROWS, initial=1000
    )
    dialect = forms.ChoiceField(required=False, choices=[(d, d) for d in DIALECTS])
    release = forms.ChoiceField(required=False, choices=[])

    def __init__(
        self,
        *args: object,
        metrics: list[tuple[str, str]],
        group_by: list[str],
        releases: Sequence[str] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["metrics"].choices = metrics
        self.fields["group_by"].choices = [(g, g) for g in group_by]
        self.fields["release"].choices = [("", "latest"), *((r, r) for r in releases)]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and start > end:
            self.add_error("end_time", "the end is before the start")
        return data


class MetricChartForm(forms.Form):
    grain = forms.ChoiceField(required=False, choices=GRAIN_CHOICES)
    dimension = forms.CharField(required=False, max_length=255)


class MetricSqlForm(forms.Form):
    grain = forms.ChoiceField(required=False, choices=GRAIN_CHOICES)
    dialect = forms.ChoiceField(required=False, choices=[(d, d) for d in DIALECTS])


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any"), *ComputeRun.Status.choices])
    metric = forms.CharField(required=False, max_length=255)


class AuditFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any"), *AuditResult.Status.choices])
    check_name = forms.CharField(required=False, max_length=40)


class SaveQueryForm(forms.Form):
    """Explore's "save as a saved query": its name and governance (the query comes along)."""

    sq_name = forms.RegexField(
        regex=r"^[a-z][a-z0-9_]{0,63}$",
        error_messages={"invalid": "lower-case letters, digits and _, starting with a letter"},
    )
    sq_label = forms.CharField(max_length=200)
    sq_owner = forms.SlugField(max_length=100)
    sq_domain = forms.SlugField(max_length=100)
