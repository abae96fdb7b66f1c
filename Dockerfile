# The workflow-tracking appliance: web, monitor and projector under supervisord.
#   docker build -t appliance .
#   docker run --env-file .env -p 8000:8000 appliance
# Every dependency ships as a wheel, so no compiler is needed, nor installed.
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APPLIANCE_RUN_DIR=/tmp/appliance \
    APPLIANCE_BIND=0.0.0.0

WORKDIR /app

# Dependencies first, from the lock file alone (exact versions and their hashes,
# made by scripts/lock): the same on every build, and a code change does not reinstall them.
COPY requirements.lock ./
RUN groupadd --system --gid 10001 appliance \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin appliance \
    && python -m venv /opt/venv \
    && pip install --no-cache-dir --require-hashes -r requirements.lock

# Then the code, installed in place (it finds conf/, migrations/ and init-db/ beside it).
COPY . .
RUN pip install --no-cache-dir --no-deps -e . \
    && python -m compileall -q appliance \
    && ln -sfn "$APPLIANCE_RUN_DIR" /app/run

# The appliance user: it alone may use supervisord's socket (mode 0700, in
# APPLIANCE_RUN_DIR; /app/run links there for supervisorctl -c conf/supervisord.conf).
USER 10001:10001
EXPOSE 8000
# Docker only reports health; restarts come from the restart policy and the
# exit code (a program that cannot start makes the container exit 1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('BACKEND_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/app/entrypoint.sh"]
