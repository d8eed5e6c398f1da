"""Error codes of compliance: reports and their jobs. Generic codes come from ``core.exceptions.Code``."""

from enum import StrEnum


class Code(StrEnum):
    UNKNOWN_REPORT = "unknown_report"
    UNKNOWN_FORMAT = "unknown_format"
    INVALID_RANGE = "invalid_range"
    OUT_OF_RANGE = "out_of_range"
    REPORT_NOT_READY = "report_not_ready"
