"""Staff views of compliance outside the reports page: start a reconciliation run now."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from compliance.reconciliation import reconciliation_schedule
from core.staff_auth import console_staff_required


@require_POST
@console_staff_required
@permission_required("ledger.add_reconciliationrun", raise_exception=True)
def reconciliation_run_now(request):
    """Queue a reconciliation run for a worker (in-process when no broker is configured)."""
    reconciliation_schedule(acting_user=request.user)
    messages.success(request, "Reconciliation queued; its result appears in the reconciliation runs.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin-reports")
    return redirect(target)
