# Multi-stage: wheels are built in the first stage; the runtime image is slim and runs as a non-root user.
FROM python:3.11-slim AS builder
WORKDIR /build
COPY requirements/ requirements/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements/base.txt

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 DJANGO_SETTINGS_MODULE=settings.base HOST=0.0.0.0 PORT=8000
RUN useradd --system --create-home --uid 10001 scorer
WORKDIR /app
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/* && rm -rf /wheels
COPY --chown=scorer:scorer . .
# collectstatic needs settings but no database or secrets.
RUN DATABASE_URL=postgres://build/none SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER scorer
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
CMD ["gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"]
