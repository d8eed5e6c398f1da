from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from core.exceptions import Code

# The id is a PostgreSQL bigint: a position outside it cannot name a row, and the database would refuse it (500).
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class CreatedCursorPagination(CursorPagination):
    """Stable pagination for append-mostly lists: newest first, by the monotonically increasing id.

    A cursor is base64 of ``o=<offset>&r=<reverse>&p=<position>``, made by us but sent back by the client, so
    it is input like any other: DRF checks the offset and the direction, and here the position must be an id
    (an integer within bigint). Anything else is a 400 ``invalid_cursor``, never a 500 from the query."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise self._invalid() from exc
        if cursor is None or cursor.position is None:
            return cursor
        try:
            return cursor._replace(position=self.position_clean(cursor.position))
        except (ValueError, OverflowError):
            raise self._invalid() from None

    def position_clean(self, position: str) -> str:
        """The position as the query will compare it; ``ValueError`` if it cannot be one (here: an id)."""
        value = int(position)
        if not BIGINT_MIN <= value <= BIGINT_MAX:
            raise ValueError(f"not a bigint: {value}")
        return str(value)

    def _invalid(self) -> ValidationError:
        detail = ErrorDetail(str(self.invalid_cursor_message), code=Code.INVALID_CURSOR)
        return ValidationError({self.cursor_query_param: [detail]})
