import os

from django.core.wsgi import get_wsgi_application

from scorer_fast.native_stderr import relay_native_stderr

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
application = get_wsgi_application()
relay_native_stderr()  # after logging is configured: didkit's panic output becomes JSON log lines
