from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from core.exceptions import Code


class CreatedCursorPagination(CursorPagination):
    """Stable pagination for append-mostly lists: newest first, by the monotonically increasing id."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        """A malformed cursor is bad input (400 ``invalid_cursor``), not a missing resource."""
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            detail = ErrorDetail(str(exc.detail), code=Code.INVALID_CURSOR)
            raise ValidationError({self.cursor_query_param: [detail]}) from exc
