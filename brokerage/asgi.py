"""The ASGI application (README "Streams"): HTTP is Django's (the same views gunicorn serves over WSGI), and
WebSocket ``/ws/v1/`` is the streams face. ``lifespan`` starts this process's streamer when the channel layer is
the in-memory one (``STREAMS_STREAMER_IN_PROCESS``); with Redis, ``manage.py streams_relay`` feeds every process.

Served by ``manage.py streams_server`` (uvicorn), which ./run starts next to gunicorn.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")

django_application = get_asgi_application()  # first: sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from streams.lifespan import Lifespan  # noqa: E402
from streams.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": URLRouter(websocket_urlpatterns),
    "lifespan": Lifespan(),
})
