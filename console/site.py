"""The operations console: Django's admin site with a dashboard index and the ledger's report pages.

Views here only parse input, call a selector or a service and render; a refused operation becomes a message.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone

from console.staff_login import StaffAuthenticationForm
from core.staff_auth import second_factor_missing
from ledger.dates import day_end, day_start, utc_date

VIEW_LEDGER = "ledger.view_journalentry"
VIEW_DESK = "trading.view_quote"
DESK_DAYS = 30
RUN_RECONCILIATION = "ledger.add_reconciliationrun"
EXPORT_REPORTS = "accounts.export_reports"
VIEW_WEBHOOKS = "events.view_webhookendpoint"


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Brokerage operations console"
    site_title = "Operations console"
    index_title = "Dashboard"
    index_template = "admin/console_index.html"
    # One-step sign-in: password, and the authenticator code for staff who move money or change risk.
    login_form = StaffAuthenticationForm
    login_template = "admin/console_login.html"

    def has_permission(self, request):
        """Active staff, signed in with a second factor in this session where their permissions need one
        (README "Security"); anyone else is sent to the sign-in page."""
        return super().has_permission(request) and not second_factor_missing(request.user)

    def get_urls(self):
        console = [
            path("console/trial-balance/", self.admin_view(self.trial_balance_view), name="trial_balance"),
            path("console/operations/", self.admin_view(self.operations_view), name="operations"),
            path(
                "console/statement/<int:account_id>/",
                self.admin_view(self.statement_view),
                name="account_statement",
            ),
            path("console/inventory/", self.admin_view(self.inventory_view), name="inventory"),
        ]
        return console + super().get_urls()

    def index(self, request, extra_context=None):
        return super().index(request, {**self.dashboard_context(request), **(extra_context or {})})

    def dashboard_context(self, request) -> dict:
        from console import dashboard as console

        return {
            "market_activity": console.market_activity(since=console.start_of_today()),
            "pending_withdrawals": console.pending_withdrawals_by_status(),
            "awaiting_adjustments": console.adjustments_awaiting_approval(),
            "reconciliation": console.latest_reconciliation(),
            "can_run_reconciliation": request.user.has_perm(RUN_RECONCILIATION),
            "can_view_ledger": request.user.has_perm(VIEW_LEDGER),
            # The compliance reports page and the reconciliation button's view belong to compliance.reports.
            "reconcile_url": _reverse_or_none("admin-reconciliation-run"),
            "reports_url": _reverse_or_none("admin-reports") if request.user.has_perm(EXPORT_REPORTS) else None,
            "delivery": _delivery_status() if request.user.has_perm(VIEW_WEBHOOKS) else None,
            "can_view_desk": request.user.has_perm(VIEW_DESK),
        }

    # --- views ------------------------------------------------------------------------------------------

    def operations_view(self, request):
        from console.operations import operations_overview

        return self._render(request, "admin/console_operations.html", "Operations: metrics", **operations_overview())

    def trial_balance_view(self, request):
        from console.dashboard import trial_balance_for

        _require(request, VIEW_LEDGER)
        form = TrialBalanceForm(request.GET)  # every field is optional: no query means all assets, now
        trial_balances = []
        if form.is_valid():
            assets = [form.cleaned_data["asset"]] if form.cleaned_data["asset"] else _asset_codes()
            trial_balances = [trial_balance_for(asset=a, at=form.cleaned_data["at"]) for a in assets]
        return self._render(request, "admin/ledger/trial_balance.html", "Trial balance", form=form,
                            trial_balances=trial_balances)

    def statement_view(self, request, account_id: int):
        from console.dashboard import account_statement
        from ledger.models import LedgerAccount

        _require(request, VIEW_LEDGER)
        account = get_object_or_404(LedgerAccount.objects.select_related("client"), pk=account_id)
        form = StatementForm(request.GET or None, initial=StatementForm.defaults())
        statement = None
        if form.is_bound and form.is_valid():
            statement = account_statement(account=account, **form.period())
        export_url = None
        if statement and account.client_id and request.user.has_perm(EXPORT_REPORTS):
            export_url = _reverse_or_none("admin-reports")
        return self._render(request, "admin/ledger/statement.html", f"Statement of {account.code}",
                            form=form, account=account, statement=statement, export_url=export_url)

    def inventory_view(self, request):
        """The principal desk: inventory and exposure per asset, and the spread captured per day, charted."""
        from trading import inventory

        _require(request, VIEW_DESK)
        last = utc_date(timezone.now())
        first = last - timedelta(days=DESK_DAYS - 1)
        days = inventory.desk_days(since=day_start(first))
        charts = [
            {"asset": asset, "chart": inventory.chart_bars(days, quote_asset=asset, first=first, last=last),
             "total": sum((d.spread_captured for d in days if d.quote_asset == asset), Decimal(0))}
            for asset in sorted({d.quote_asset for d in days}) or ["USD"]
        ]
        return self._render(request, "admin/trading/inventory.html", "Inventory and exposure",
                            exposures=inventory.exposures(), days=list(reversed(days)), charts=charts,
                            first=first, last=last)

    def _render(self, request, template: str, title: str, **context):
        return TemplateResponse(request, template, {**self.each_context(request), "title": title, **context})


def _delivery_status():
    from events.selectors import delivery_status

    return delivery_status()


def _require(request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


def _reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _asset_codes() -> list[str]:
    from ledger.models import Asset

    return list(Asset.objects.values_list("code", flat=True))


def _asset_choices() -> list[tuple[str, str]]:
    return [(code, code) for code in _asset_codes()]


class TrialBalanceForm(forms.Form):
    asset = forms.ChoiceField(required=False)
    at = forms.DateTimeField(
        required=False, label="As of", help_text="Empty: now.", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset"].choices = [("", "All assets")] + _asset_choices()


class StatementForm(forms.Form):
    asset = forms.ChoiceField()
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="First day, included.")
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Last day, included.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset"].choices = _asset_choices()

    @staticmethod
    def defaults() -> dict:
        today = utc_date(timezone.now())
        return {"start": today.replace(day=1), "end": today}

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The period ends before it starts.")
        if data.get("end") == date.max:  # its day_end would overflow
            self.add_error("end", "The period must end before the last representable day.")
        return data

    def period(self) -> dict:
        """Whole UTC days, both included, as the half-open range the statement selector takes."""
        return {
            "asset": self.cleaned_data["asset"],
            "start": day_start(self.cleaned_data["start"]),
            "end": day_end(self.cleaned_data["end"]),
        }
