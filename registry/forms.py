from __future__ import annotations

from django import forms

from registry.models import Proposal, Review, Status, Tier


class CatalogForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    owner = forms.SlugField(required=False, max_length=100)
    domain = forms.SlugField(required=False, max_length=100)
    tier = forms.ChoiceField(required=False, choices=[("", "any"), *Tier.choices])
    status = forms.ChoiceField(required=False, choices=[("", "live"), *Status.choices])
    offset = forms.IntegerField(required=False, min_value=0, max_value=1_000_000)


class ProposalFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "all"), *Proposal.State.choices])


class ProposeEditForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        max_length=200_000,
        strip=False,
    )
    draft = forms.BooleanField(required=False)


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=Review.Verdict.choices)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000)
    definition = forms.CharField(required=False, max_length=300)
    field_path = forms.CharField(required=False, max_length=500)


class CloseForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2_000)
