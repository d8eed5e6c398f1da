from django.urls import path

from events import api

urlpatterns = [
    path("events/", api.EventListView.as_view(), name="event-list"),
    path("webhooks/", api.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", api.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/ping/", api.WebhookPingView.as_view(), name="webhook-ping"),
    path("webhooks/<int:pk>/enable/", api.WebhookEnableView.as_view(), name="webhook-enable"),
    path("webhooks/<int:pk>/attempts/", api.WebhookAttemptListView.as_view(), name="webhook-attempts"),
]
