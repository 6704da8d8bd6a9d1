# One application image, four roles (see docker-compose.yml):
#   web         python -m imagepipe.webserver -b 0.0.0.0 -p 8000 imagepipe.asgi:application
#               (the default CMD: daphne, refusing request bodies too large or too slow; the TLS
#               proxy in front of it is the only way in)
#   collector   python manage.py runcollector
#   dispatcher  python manage.py rundispatcher
#   worker      python manage.py runworker_kafka
# The image is a production one: PRODUCTION is on, so a container given no SECRET_KEY, no
# passwords or a broker in clear refuses to start (imagepipe/production.py, imagepipe/needs.py).
FROM python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=imagepipe.settings \
    PRODUCTION=true
# Bands of rows (4 MiB and more) mapped on their own and given back when freed: memory stays
# flat from job to job (imagepipe/processes.py says why; the dispatcher's is 128 KiB, in compose).
ENV MALLOC_MMAP_THRESHOLD_=4194304

WORKDIR /app

# Dependencies first, so code changes do not reinstall them (every pin ships a manylinux wheel).
COPY requirements/ requirements/
RUN pip install -r requirements/prod.txt

# A non-root user that owns the writable places: var/ (IMAGEPIPE_VAR: the liveness file) and
# /data/media, which a named volume mounted there inherits on first use.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin imagepipe \
    && mkdir -p /app/var /data/media \
    && chown -R imagepipe:imagepipe /app/var /data

# The code stays root's: the processes may write var/ and the media, never what they run.
COPY . .

# Static files, collected under the production settings: WhiteNoise serves them with hashed names
# and compressed copies (STATIC_ROOT, /app/var/static). The settings want a host name and broker
# credentials as they load; the build has none and connects to nothing, so these stand in.
RUN ALLOWED_HOSTS=build KAFKA_SECURITY_PROTOCOL=SASL_SSL KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_SASL_USERNAME=build KAFKA_SASL_PASSWORD=build python manage.py collectstatic --noinput

USER imagepipe
EXPOSE 8000

CMD ["python", "-m", "imagepipe.webserver", "-b", "0.0.0.0", "-p", "8000", "imagepipe.asgi:application"]
