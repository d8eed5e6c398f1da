"""Client onboarding in the operations console: client users (memberships and roles) and API key issuance.

Registered from ``accounts.admin``. Every change goes through ``accounts.services``
(permissions, four-eyes, audit). A key's secret is rendered once, in the response to the request that created
it (never a redirect, a message or a session value: those are stored), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts import services
from accounts.models import (
    AccountStatus,
    ApiKey,
    ApiKeyRequest,
    ClientAccount,
    Membership,
    Role,
    Scope,
)
from accounts.services import onboarding
from core.admin_kit import (
    DomainErrorsAsMessagesMixin,
    NoDeleteMixin,
    ServiceAddMixin,
    call_for_each,
    perm_checker,
    reason_action,
)
from core.exceptions import DomainError

MANAGE_USERS = onboarding.MANAGE_USERS
ISSUE_KEYS = onboarding.ISSUE_KEYS
APPROVE_KEYS = onboarding.APPROVE_KEYS


def base_url(request) -> str:
    """The origin of links in e-mails when ``PUBLIC_BASE_URL`` is not set: the console's own."""
    return request.build_absolute_uri("/")


def issue_key_url(user) -> str:
    return reverse("admin:accounts_apikeyrequest_add") + f"?user={user.pk}"


# --- client users -------------------------------------------------------------------------------------------


class ClientUserInviteForm(forms.Form):
    account = forms.ModelChoiceField(queryset=ClientAccount.objects.exclude(status=AccountStatus.CLOSED))
    username = forms.CharField(max_length=150, help_text="What the user signs in with; unique.")
    email = forms.EmailField(help_text="The one-time link to set a password is sent here.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.TRADER,
                             help_text="Viewer: read. Trader: read and trade. Account admin: also withdrawals and "
                                       "every key of the account.")


class MembershipChangeForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


def _send_links(modeladmin, request, queryset):
    def send(membership):
        delivery = services.password_link_send(membership=membership, acting_user=request.user,
                                               base_url=base_url(request))
        level = messages.SUCCESS if delivery.sent else messages.WARNING
        modeladmin.message_user(request, f"{membership.user}: {delivery}", level)

    call_for_each(modeladmin, request, queryset, send, done="Set-password links sent")


_send_links.__name__ = "send_password_links"
send_password_links = admin.action(description="E-mail a new set-password link", permissions=["manage"])(_send_links)


@admin.register(Membership)
class MembershipAdmin(ServiceAddMixin, DomainErrorsAsMessagesMixin, NoDeleteMixin, admin.ModelAdmin):
    """A client user: a Django user with a role in exactly one client account."""

    list_display = ["username", "email", "account", "role", "active", "password_set", "created_at"]
    list_filter = ["role", "user__is_active", "account__status"]
    search_fields = ["user__username", "user__email", "account__legal_name", "account__id__exact"]
    list_select_related = ["user", "account"]
    form = MembershipChangeForm
    fields = ["username", "email", "account_link", "role", "active", "password_set", "api_keys", "created_at"]
    readonly_fields = ["username", "email", "account_link", "active", "password_set", "api_keys", "created_at"]
    add_form = ClientUserInviteForm
    add_intro = ("The user is created without a password and e-mailed a one-time link to set one. Issue their API "
                 "key from their page next.")
    actions = [
        send_password_links,
        reason_action(name="deactivate", description="Deactivate selected users (revokes their API keys)",
                      permission="manage", done="Deactivated",
                      call=lambda m, user, reason: services.client_user_deactivate(membership=m, acting_user=user,
                                                                                   reason=reason)),
        reason_action(name="reactivate", description="Reactivate selected users", permission="manage",
                      done="Reactivated",
                      call=lambda m, user, reason: services.client_user_reactivate(membership=m, acting_user=user,
                                                                                   reason=reason)),
    ]
    has_manage_permission = perm_checker(MANAGE_USERS)

    def create_through_service(self, request, data):
        membership, delivery = services.client_user_invite(acting_user=request.user, base_url=base_url(request),
                                                           **data)
        membership.link_delivery = delivery
        return membership

    def created_message(self, obj) -> str:
        return f"{obj.user} added to {obj.account} as {obj.get_role_display()}. {obj.link_delivery}"

    def save_model(self, request, obj, form, change):
        if "role" in form.changed_data:
            services.client_user_role_set(membership=obj, role=form.cleaned_data["role"], acting_user=request.user)

    @admin.display(description="username", ordering="user__username")
    def username(self, obj):
        return obj.user.get_username()

    @admin.display(description="e-mail", ordering="user__email")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="account")
    def account_link(self, obj):
        url = reverse("admin:accounts_clientaccount_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, obj.account)

    @admin.display(description="active", boolean=True)
    def active(self, obj):
        return obj.user.is_active

    @admin.display(description="password set", boolean=True)
    def password_set(self, obj):
        return obj.user.has_usable_password()

    @admin.display(description="API keys")
    def api_keys(self, obj):
        keys = ApiKey.objects.filter(user=obj.user).order_by("-id")
        rows = format_html_join(
            "", "<li><a href=\"{}\">{}</a> {} {}</li>",
            ((reverse("admin:accounts_apikey_change", args=[k.pk]), k.prefix, ", ".join(k.scopes),
              "(revoked)" if k.revoked_at else "") for k in keys),
        )
        issue = format_html('<a href="{}" id="issue-api-key">Issue an API key</a>', issue_key_url(obj.user))
        return format_html("<ul>{}</ul>{}", rows, issue) if keys else issue


# --- API key issuance ----------------------------------------------------------------------------------------


class ClientUserChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        membership = obj.membership
        return f"{obj.get_username()} ({membership.get_role_display()}, {membership.account})"


class ApiKeyIssueForm(forms.Form):
    user = ClientUserChoice(
        queryset=get_user_model().objects.filter(membership__isnull=False, is_active=True)
        .select_related("membership__account").order_by("membership__account_id", "username"),
        help_text="The client user who will hold the key.",
    )
    name = forms.CharField(max_length=100, required=False, help_text="What the client calls it, e.g. 'prod OMS'.")
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, initial=[Scope.READ], widget=forms.CheckboxSelectMultiple,
        help_text="Within the user's role. Trade or transfer: a different staff user must approve the key.",
    )
    allowed_ips = forms.CharField(required=False, help_text="IP addresses the key may be used from, separated by "
                                                            "commas or spaces; empty: any.")

    def clean_allowed_ips(self):
        return self.cleaned_data["allowed_ips"].replace(",", " ").split()


@dataclass
class IssuedKey:
    """What the add page created when the key needed no approval: the key and its secret, shown once."""

    key: ApiKey
    secret: str


def secret_page(modeladmin, request, *, key: ApiKey, secret: str, title: str):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title, "opts": modeladmin.opts, "key": key, "secret": secret,
        "key_url": reverse("admin:accounts_apikey_change", args=[key.pk]),
    }
    response = TemplateResponse(request, "admin/accounts/api_key_secret.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin.register(ApiKeyRequest)
class ApiKeyRequestAdmin(ServiceAddMixin, admin.ModelAdmin):
    """Issue keys to client users. Read-only keys at once; keys that move money under dual control."""

    add_form = ApiKeyIssueForm
    add_intro = ("A read-only key is issued at once and its secret shown once on the next page. A key with the "
                 "trade or transfer scope is a proposal: a different staff user with the approve permission "
                 "approves it, and its secret is shown once to them. Pass the secret to the client securely.")
    list_display = ["id", "user", "account", "scopes", "status", "proposed_by", "proposed_at", "decided_by"]
    list_filter = ["status"]
    search_fields = ["user__username", "account__legal_name", "id__exact", "name"]
    list_select_related = ["user", "account", "proposed_by", "decided_by"]
    fields = ["account", "user", "name", "scopes", "allowed_ips", "status", "proposed_by", "proposed_at",
              "decided_by", "decided_at", "reason", "key"]
    has_approve_permission = perm_checker(APPROVE_KEYS)

    def has_add_permission(self, request):
        return request.user.has_perm(ISSUE_KEYS)

    def has_change_permission(self, request, obj=None):
        return False  # decided through approve/reject only

    def has_delete_permission(self, request, obj=None):
        return False

    def create_through_service(self, request, data):
        if services.key_needs_dual_control(data["scopes"]):
            return services.api_key_request_propose(acting_user=request.user, **data)
        key, secret = services.api_key_issue(acting_user=request.user, **data)
        return IssuedKey(key, secret)

    def created_response(self, request, obj):
        if isinstance(obj, IssuedKey):
            return secret_page(self, request, key=obj.key, secret=obj.secret, title="API key issued")
        return super().created_response(request, obj)

    def created_message(self, obj) -> str:
        return f"API key request #{obj.pk} proposed: a different staff user must approve it before the key exists."

    def get_urls(self):
        return [
            path("<int:object_id>/approve/", self.admin_site.admin_view(self.approve_view),
                 name="accounts_apikeyrequest_approve"),
            path("<int:object_id>/reject/", self.admin_site.admin_view(self.reject_view),
                 name="accounts_apikeyrequest_reject"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_decide": self.has_approve_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def approve_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        key_request = get_object_or_404(ApiKeyRequest, pk=object_id)
        try:
            key_request, secret = services.api_key_request_approve(request=key_request, acting_user=request.user)
        except DomainError as exc:
            self.message_user(request, f"API key request #{key_request.pk} not approved: {exc.message}",
                              messages.ERROR)
            return redirect("admin:accounts_apikeyrequest_change", key_request.pk)
        if secret is None:
            self.message_user(request, f"API key request #{key_request.pk} was already approved; its secret was "
                                       "shown once then and cannot be shown again.", messages.WARNING)
            return redirect("admin:accounts_apikeyrequest_change", key_request.pk)
        return secret_page(self, request, key=key_request.key, secret=secret, title="API key approved and issued")

    def reject_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        key_request = get_object_or_404(ApiKeyRequest, pk=object_id)
        try:
            services.api_key_request_reject(request=key_request, acting_user=request.user,
                                            reason=request.POST.get("reason", ""))
        except DomainError as exc:
            self.message_user(request, f"API key request #{key_request.pk} not rejected: {exc.message}",
                              messages.ERROR)
        else:
            self.message_user(request, f"API key request #{key_request.pk} rejected.", messages.SUCCESS)
        return redirect("admin:accounts_apikeyrequest_change", key_request.pk)
