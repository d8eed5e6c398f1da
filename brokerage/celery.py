import os

from celery import Celery, signals

from core.log_filters import RoutineTaskFilter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")

app = Celery("brokerage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat's market sweep every 5 s and dead-man sweep every second: Celery's own INFO lines about them only at
# DEBUG (core.log_filters).
RoutineTaskFilter.install(["trading.tasks.sweep_markets", "trading.tasks.cancel_after_sweep"])

# The request id of the API call that queued a task travels in the message and tags the task's log lines.
def _connect_request_ids():
    from core import logs

    signals.before_task_publish.connect(logs.task_publish_request_id, weak=False, dispatch_uid="request_id_publish")
    signals.task_prerun.connect(logs.task_request_id_enter, weak=False, dispatch_uid="request_id_enter")
    signals.task_postrun.connect(logs.task_request_id_exit, weak=False, dispatch_uid="request_id_exit")


_connect_request_ids()


# Celery's Django fix-up closes the database connection before and after every task unless CELERY_DB_REUSE_MAX
# is set: a new PostgreSQL backend per matcher batch, and none of the batch's statements ever prepared. The
# settings set it; connections then live as they do in the web (CONN_MAX_AGE), closed after a task that broke
# one. Not for tasks run in-process (no broker): they run inside the caller's request and transaction.
def _task_connections_tidy(task=None, **_):
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


signals.task_prerun.connect(_task_connections_tidy, weak=False, dispatch_uid="db_connections_prerun")
signals.task_postrun.connect(_task_connections_tidy, weak=False, dispatch_uid="db_connections_postrun")


@signals.worker_ready.connect
def _worker_metrics(**_):
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from core.metrics import worker_metrics_serve

        worker_metrics_serve(settings.WORKER_METRICS_PORT)
