from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"

    def ready(self):
        from compliance.metrics import reconciliation_state
        from core.metrics import scrape_collector_register

        scrape_collector_register("reconciliation", reconciliation_state)
