"""The smallest WSGI application: ``bench/floor.py``'s ``bare`` target (the server's and the client's cost alone)."""

BODY = b'{"status": "ok"}'


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
