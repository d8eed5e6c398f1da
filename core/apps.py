from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self):
        from core.metrics import celery_queue_depth, heartbeat_collect, scrape_collector_register

        scrape_collector_register("celery_queue_depth", celery_queue_depth)
        scrape_collector_register("heartbeats", heartbeat_collect)
