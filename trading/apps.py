from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = 'django.db.models.BigAutoField'
    name = 'trading'

    def ready(self):
        from events.rendering import renderer_register
        from trading import outbox

        # The matcher's events are drafts, rendered by the sequencer (events.rendering).
        renderer_register("order", outbox.render_orders)
        renderer_register("fill", outbox.render_fills)
        renderer_register("hold", outbox.render_holds)

        from core.metrics import scrape_collector_register
        from trading.metrics import matcher_backlog

        scrape_collector_register("matcher_backlog", matcher_backlog)
