"""Idempotent POSTs keyed by the ``Idempotency-Key`` header, for any API that moves money or creates orders.

The first successful (2xx) response is stored with a hash of the request body. The same key again with the
same body returns that stored response (status and body) and runs nothing; with another body it is a 409
``idempotency_conflict``. Failed requests store nothing, so a client may fix the input and retry the key.
Requests of one account are serialised by a lock on its row, so two concurrent uses of a key cannot both run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import transaction
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.errors import AccountsError, Code
from accounts.models import ClientAccount, IdempotencyRecord
from ledger.errors import IdempotencyConflict

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
REPLAY_HEADER = "Idempotent-Replayed"


def idempotency_key_of(request, *, required: bool) -> str | None:
    key = request.headers.get(HEADER, "")
    if not key:
        if required:
            raise AccountsError(f"This request needs an {HEADER} header.", code=Code.IDEMPOTENCY_KEY_REQUIRED,
                                field=HEADER)
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise AccountsError(f"An {HEADER} has 1 to {MAX_KEY_LENGTH} printable characters.",
                            code=Code.INVALID_IDEMPOTENCY_KEY, field=HEADER)
    return key


def request_fingerprint(data) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_response(request, *, account: ClientAccount, endpoint: str, required: bool,
                        execute: Callable[[str | None], Response], content=None) -> Response:
    """Run ``execute(key)`` at most once per (account, endpoint, key); replay its stored response after.

    The request is identified by its body, or by ``content`` when given (e.g. the body and the object a URL
    names, so one key cannot be replayed against another object of the same endpoint)."""
    key = idempotency_key_of(request, required=required)
    if key is None:
        with transaction.atomic():
            return execute(None)
    fingerprint = request_fingerprint(request.data if content is None else content)
    with transaction.atomic():
        ClientAccount.objects.select_for_update(no_key=True).only("pk").get(pk=account.pk)
        record = IdempotencyRecord.objects.filter(account=account, endpoint=endpoint, key=key).first()
        if record is not None:
            if record.request_hash != fingerprint:
                raise IdempotencyConflict(f"This {HEADER} was already used with a different request body.",
                                          field=HEADER)
            return Response(record.response_body, status=record.response_status, headers={REPLAY_HEADER: "true"})
        response = execute(key)
        if 200 <= response.status_code < 300:
            IdempotencyRecord.objects.create(
                account=account, endpoint=endpoint, key=key, request_hash=fingerprint,
                response_status=response.status_code, response_body=json.loads(JSONRenderer().render(response.data)),
            )
        return response
