#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as refused:  # e.g. the production refusal: one line and status 2, no traceback
        print(f"ImproperlyConfigured: {refused}", file=sys.stderr)
        sys.exit(2)
