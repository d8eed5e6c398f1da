"""Building blocks of the operations console's ModelAdmins.

The admin never changes state itself: actions call the domain services (which check the rules and write the
audit log) and show a refused operation as a message, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from core.exceptions import DomainError


class ReadOnlyAdminMixin:
    """For append-only and service-owned records: the admin shows them and never adds, edits or deletes."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoDeleteMixin:
    """Financial records are never deleted from the console."""

    def has_delete_permission(self, request, obj=None):
        return False


class DomainErrorsAsMessagesMixin:
    """Safety net of the change form: a service refusing a save shows as a message on the same page."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ServiceAddMixin:
    """The add page fills a plain form and creates the object through a service; a refusal shows on the form."""

    add_form: type[forms.Form]
    add_intro = ""

    def create_through_service(self, request, data: dict):
        raise NotImplementedError

    def created_message(self, obj) -> str:
        return f"{obj} created."

    def created_response(self, request, obj):
        """Where the add page goes once the service has created ``obj``: its change page, with a message."""
        self.message_user(request, self.created_message(obj), messages.SUCCESS)
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", obj.pk)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = self.add_form(request.POST or None, initial=request.GET.dict())
        if request.method == "POST" and form.is_valid():
            try:
                obj = self.create_through_service(request, form.cleaned_data)
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                return self.created_response(request, obj)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add {self.opts.verbose_name}",
            "opts": self.opts,
            "form": form,
            "intro": self.add_intro,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/service_form.html", context)


def perm_checker(perm: str) -> Callable:
    """A ``has_<name>_permission`` method for ModelAdmin actions that need one Django permission."""

    def has_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(perm)

    return has_permission


def add_domain_error(form: forms.Form, exc: DomainError) -> None:
    """Show a refused operation on the form: on its field when the error names one, else above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def call_for_each(modeladmin, request, queryset, call: Callable, *, done: str) -> int:
    """Run ``call(obj)`` for every selected object, each in its own transaction (a service call); a refusal
    becomes an error message naming the object and does not stop the others. Returns how many succeeded."""
    succeeded = 0
    for obj in queryset:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded} of {len(queryset)}.", messages.SUCCESS)
    return succeeded


def service_action(*, name: str, description: str, permission: str, call: Callable, done: str) -> Callable:
    """An admin action calling ``call(obj, acting_user)`` on each selected object."""

    def action(modeladmin, request, queryset):
        call_for_each(modeladmin, request, queryset, lambda obj: call(obj, request.user), done=done)

    action.__name__ = name
    return admin.action(description=description, permissions=[permission])(action)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=500)


def reason_action(*, name: str, description: str, permission: str, call: Callable, done: str) -> Callable:
    """An admin action that first asks why (an intermediate page), then calls ``call(obj, acting_user, reason)``
    on each selected object."""

    def action(modeladmin, request, queryset):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            call_for_each(modeladmin, request, queryset, lambda obj: call(obj, request.user, reason), done=done)
            return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "opts": modeladmin.model._meta,
            "form": form,
            "objects": queryset,
            "action_name": name,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/action_reason.html", context)

    action.__name__ = name
    return admin.action(description=description, permissions=[permission])(action)


class MakerCheckerAdminMixin:
    """The decision of a maker-checker proposal (an adjustment, a spread change): approve and reject buttons on its
    change page, posting to ``<id>/approve/`` and ``<id>/reject/`` (URL names ``<app>_<model>_approve`` and
    ``_reject``), which call ``approve`` or ``reject`` (the services enforce permission and four eyes) and show the
    outcome, or the refusal, as a message."""

    change_form_template = "admin/maker_checker_change_form.html"
    decision_permission: str
    approve_label = "Approve"
    approved = "approved"

    def approve(self, obj, acting_user):
        raise NotImplementedError

    def reject(self, obj, acting_user, reason: str):
        raise NotImplementedError

    def has_approve_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(self.decision_permission)

    def _decision_url_name(self, decision: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{decision}"

    def get_urls(self):
        return [
            path("<int:object_id>/approve/", self.admin_site.admin_view(self.approve_view),
                 name=self._decision_url_name("approve")),
            path("<int:object_id>/reject/", self.admin_site.admin_view(self.reject_view),
                 name=self._decision_url_name("reject")),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "can_decide": self.has_approve_permission(request),
            "decision_id": self.opts.model_name,
            "decision_noun": self.opts.verbose_name,
            "approve_label": self.approve_label,
            "approve_url_name": f"admin:{self._decision_url_name('approve')}",
            "reject_url_name": f"admin:{self._decision_url_name('reject')}",
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

    def approve_view(self, request, object_id):
        return self._decide(request, object_id, lambda obj: self.approve(obj, request.user), self.approved)

    def reject_view(self, request, object_id):
        reason = request.POST.get("reason", "")
        return self._decide(request, object_id, lambda obj: self.reject(obj, request.user, reason), "rejected")

    def _decide(self, request, object_id, decide: Callable, outcome: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(self.model, pk=object_id)
        label = f"{self.opts.verbose_name.capitalize()} #{obj.pk}"
        try:
            decide(obj)
        except DomainError as exc:
            self.message_user(request, f"{label} not decided: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"{label} {outcome}.", messages.SUCCESS)
        return redirect(f"admin:{self._decision_url_name('change')}", obj.pk)
