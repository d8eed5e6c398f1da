"""``/healthz`` (the process answers) and ``/readyz`` (it can do its job), on django-health-check's checks.

``/readyz`` runs, concurrently and each within its timeout: ``database`` (``SELECT 1`` on a new connection),
``migrations`` (none unapplied), ``cache`` (set and get a key: Redis when configured), ``broker`` (a
connection to the Celery broker, Redis or RabbitMQ) and ``matcher`` (the matcher's heartbeat is younger than
``MATCHER_HEARTBEAT_MAX_AGE_SECONDS``). 200 when all pass; otherwise 503 with ``code: service_unavailable``
and the failing components named in ``failing`` and ``message``. ``?check=database&check=migrations`` runs
only those: the Kubernetes readiness probe of the web tier does that, so a Redis or matcher outage does not
take every web pod out of the load balancer while orders can still be accepted (README "Operations").

Without a broker (the embedded default runs tasks in-process) ``broker`` and ``matcher`` report ``skipped``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable as CheckFailed
from health_check.views import HealthCheckView

from core.exceptions import Code
from core.heartbeats import MATCHER, heartbeat_ages

TIMEOUT = datetime.timedelta(seconds=3)
_migrations_applied = False  # once true, stays true for the process: migrations are not unapplied under it


def _broker_configured() -> bool:
    from celery import current_app

    return not current_app.conf.task_always_eager


@dataclasses.dataclass
class Migrations(HealthCheck):
    timeout = TIMEOUT

    def run(self):
        global _migrations_applied
        if _migrations_applied:
            return
        from django.db.migrations.executor import MigrationExecutor

        try:
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            raise CheckFailed(f"cannot read the applied migrations: {type(exc).__name__}") from exc
        finally:
            connection.close()  # this runs in a pool thread: leave no connection behind
        if plan:
            raise CheckFailed(f"{len(plan)} migrations not applied, first {plan[0][0].app_label}.{plan[0][0].name}")
        _migrations_applied = True


@dataclasses.dataclass
class Broker(HealthCheck):
    timeout = TIMEOUT

    def run(self):
        from celery import current_app

        try:
            with current_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=TIMEOUT.total_seconds())
                conn.default_channel  # noqa: B018 - opens a channel: a Redis transport connects (and PINGs) here
        except Exception as exc:
            raise CheckFailed(f"broker unreachable: {type(exc).__name__}") from exc


@dataclasses.dataclass
class MatcherHeartbeat(HealthCheck):
    timeout = TIMEOUT

    def run(self):
        try:
            age = heartbeat_ages().get(MATCHER)
        except DatabaseError as exc:
            raise CheckFailed(f"cannot read the heartbeat: {type(exc).__name__}") from exc
        finally:
            connection.close()
        limit = settings.MATCHER_HEARTBEAT_MAX_AGE_SECONDS
        if age is None:
            raise CheckFailed("no matcher heartbeat yet (is the beat running, and a worker?)")
        if age > limit:
            raise CheckFailed(f"matcher heartbeat is {age:.0f}s old (limit {limit}s)")


NEEDS_BROKER = {"broker", "matcher"}
CHECKS = {
    "database": (Database, {}),
    "migrations": (Migrations, {}),
    "cache": (Cache, {"timeout": TIMEOUT}),
    "broker": (Broker, {}),
    "matcher": (MatcherHeartbeat, {}),
}


class ReadinessView(HealthCheckView):
    checks = tuple(CHECKS.values())

    async def get(self, request, *args, **kwargs):
        names = request.GET.getlist("check") or list(CHECKS)
        unknown = [n for n in names if n not in CHECKS]
        if unknown:
            return JsonResponse({"code": Code.INVALID_CHOICE, "message": f"Unknown check {unknown[0]!r}; "
                                 f"choose from {', '.join(CHECKS)}.", "field": "check"}, status=400)
        skipped = [] if _broker_configured() else [n for n in names if n in NEEDS_BROKER]
        run = [n for n in names if n not in skipped]
        results = await asyncio.gather(*(_result(CHECKS[n][0](**CHECKS[n][1])) for n in run))
        checks = {**dict(zip(run, results)), **{n: {"status": "skipped"} for n in skipped}}
        failing = [name for name, result in checks.items() if result["status"] == "failing"]
        if not failing:
            return JsonResponse({"status": "ok", "checks": checks})
        return JsonResponse({"code": Code.SERVICE_UNAVAILABLE, "message": f"Not ready: {', '.join(failing)}.",
                             "field": None, "status": "unavailable", "failing": failing, "checks": checks},
                            status=503, headers={"Retry-After": "5"})


async def _result(check: HealthCheck) -> dict:
    result = await check.get_result()
    seconds = round(result.time_taken, 4)
    error = result.error
    if error is None:
        return {"status": "ok", "seconds": seconds}
    return {"status": "failing", "error": str(error), "seconds": seconds}


def liveness_view(request):
    """``/healthz``: the process serves requests. No dependency is checked, so a database outage does not make
    an orchestrator restart every web process (readiness takes them out of the load balancer instead)."""
    return JsonResponse({"status": "ok"})
