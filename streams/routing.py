from django.urls import path

from streams.consumers import StreamConsumer

websocket_urlpatterns = [path("ws/v1/", StreamConsumer.as_asgi())]
