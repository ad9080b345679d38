"""The admin's one date format (FORMAT_MODULE_PATH): ISO order, 24 h, no zone suffix; the site header says once
that every time is UTC (TIME_ZONE)."""

DATETIME_FORMAT = "Y-m-d H:i"
DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
