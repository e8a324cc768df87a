"""The team page's forms. They check shape only (a role is one of the roles, a name is
given); who may grant what is the service's rule (tenancy/services.py), which words its
refusals by the same field names."""

from __future__ import annotations

from django import forms

from tenancy.models import Membership


class MemberAddForm(forms.Form):
    user = forms.CharField(
        label="Username or email",
        max_length=254,
        help_text="Someone with an account on this site.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
