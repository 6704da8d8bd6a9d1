# One application image, three roles (see docker-compose.yml):
#   web        python -m imagepipe.webserver -b 0.0.0.0 -p 8000 imagepipe.asgi:application
#              (the default CMD: daphne, refusing request bodies too large or too slow)
#   collector  python manage.py runcollector
#   worker     python manage.py runworker_kafka
# Static files need no collectstatic: SERVE_STATIC=true (the default) lets daphne serve /static/.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=imagepipe.settings

WORKDIR /app

# Dependencies first, so code changes do not reinstall them (every pin ships a manylinux wheel).
COPY requirements/ requirements/
RUN pip install -r requirements/prod.txt

# A non-root user that owns the writable places: var/ (IMAGEPIPE_VAR) and /data/media, which a
# named volume mounted there inherits on first use.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin imagepipe \
    && mkdir -p /app/var /data/media \
    && chown -R imagepipe:imagepipe /app/var /data

COPY --chown=imagepipe:imagepipe . .

USER imagepipe
EXPOSE 8000

CMD ["python", "-m", "imagepipe.webserver", "-b", "0.0.0.0", "-p", "8000", "imagepipe.asgi:application"]
