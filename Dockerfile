# One image, two roles (docs/deploy.md):
#   default           gunicorn on $PORT: ECS / containers behind an `ip` target group
#   Lambda container  entry point `python -m awslambdaric`, command `scorer_fast.lambda_handler.handler`
# Production mode by default; no test or demo keys inside (.dockerignore).
FROM python:3.11-slim AS builder
WORKDIR /build
COPY requirements/ requirements/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements/base.txt

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 DJANGO_SETTINGS_MODULE=settings.base SCORER_ENV=production \
    HOST=0.0.0.0 PORT=8000
RUN useradd --system --create-home --uid 10001 scorer
WORKDIR /app
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/* && rm -rf /wheels
COPY --chown=scorer:scorer . .
# Bytecode now: Lambda's file system is read-only, so modules not compiled here would be compiled on every cold start.
# collectstatic (admin assets) needs settings that pass the production checks, but no database or real secrets.
RUN python -m compileall -q /app \
 && SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" TRUSTED_IAM_ISSUERS='["did:key:build-only"]' \
    CGRANTS_API_TOKEN="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" ALLOWED_HOSTS=build.invalid \
    CERAMIC_CACHE_SCORER_ID=0 DATABASE_URL=postgres://build/none python manage.py collectstatic --noinput --verbosity 0
USER scorer
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import os,urllib.request,sys; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/health').status != 200)"
CMD ["gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"]
