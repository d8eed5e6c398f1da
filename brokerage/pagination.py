from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Stable pagination for append-mostly lists: newest first, by the monotonically increasing id."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
