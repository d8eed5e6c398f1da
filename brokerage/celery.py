import os

from celery import Celery

from core.log_filters import RoutineTaskFilter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")

app = Celery("brokerage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat's market sweep every 5 s: Celery's own INFO lines about it only at DEBUG (core.log_filters).
RoutineTaskFilter.install(["trading.tasks.sweep_markets"])
