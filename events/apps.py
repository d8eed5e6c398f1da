from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events and deliveries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from core.metrics import scrape_collector_register
        from events.metrics import events_backlog

        scrape_collector_register("events_backlog", events_backlog)
