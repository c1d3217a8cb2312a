from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm

from registry.models import Proposal, Review, Status, Tier
from registry.services.logins import LoginLocked, login_authenticate

# The error code a throttled sign-in form carries; the views answer it with HTTP 429.
LOGIN_LOCKED = "login_locked"


class ThrottledSignInMixin:
    """Django's sign-in form with the password check run through ``login_authenticate``:
    throttled per account and address, failures audited."""

    interface = "web"
    cleaned_data: dict[str, Any]
    request: Any
    user_cache: Any

    @property
    def locked_message(self) -> str:
        """The lock-out message when this attempt was refused for too many failures."""
        for error in self.non_field_errors().as_data():  # type: ignore[attr-defined]
            if error.code == LOGIN_LOCKED:
                return str(error.message)
        return ""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        ip = (self.request.META.get("REMOTE_ADDR") or None) if self.request else None
        try:
            self.user_cache = login_authenticate(
                username=username,
                ip=ip,
                interface=self.interface,
                check=lambda: authenticate(self.request, username=username, password=password),
            )
        except LoginLocked as exc:
            raise forms.ValidationError(f"{exc.message} ({exc.hint})", code=LOGIN_LOCKED) from None
        if self.user_cache is None:
            raise self.get_invalid_login_error()  # type: ignore[attr-defined]
        self.confirm_login_allowed(self.user_cache)  # type: ignore[attr-defined]
        return self.cleaned_data


class SignInForm(ThrottledSignInMixin, AuthenticationForm):
    interface = "web"


class AdminSignInForm(ThrottledSignInMixin, AdminAuthenticationForm):
    interface = "admin"


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


class ReviseForm(forms.Form):
    """One definition file of a proposal, edited: laid over the current revision."""

    path = forms.CharField(max_length=500)
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        max_length=200_000,
        strip=False,
    )


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=Review.Verdict.choices)
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000)
    definition = forms.CharField(required=False, max_length=300)
    field_path = forms.CharField(required=False, max_length=500)


class CloseForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2_000)
