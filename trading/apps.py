from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'trading'

    def ready(self):
        from core.metrics import scrape_collector_register
        from trading.metrics import matcher_backlog

        scrape_collector_register("matcher_backlog", matcher_backlog)
