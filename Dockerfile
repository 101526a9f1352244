# recruiter-responder image.
#   docker build -t recruiter-responder:0.1.0 .
#   docker run --rm --env-file .env recruiter-responder:0.1.0            (= recruiter run)
#   docker run --rm --env-file .env recruiter-responder:0.1.0 migrate
# Two stages on the same base (the venv's interpreter is the base image's /usr/local/bin/python3.11):
# the builder turns the source into a wheel and installs it with its dependencies into /opt/venv; the
# final stage copies only that venv - no compiler, no pip cache, no source tree, no tests.
# For reproducible builds pin the base by digest: python:3.11-slim@sha256:...

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY recruiter ./recruiter
COPY migrations ./migrations

# The venv gets no pip of its own: the builder's pip installs into it (--python), so the final image
# carries only the service and its runtime dependencies. Every dependency ships manylinux wheels for
# CPython 3.11, so no compiler is needed here either.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --compile /wheels/*.whl


FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# Fixed numeric uid/gid 10001: the Deployment's runAsUser/runAsGroup/fsGroup, and numeric so that
# runAsNonRoot can verify it. /app (the WORKDIR) belongs to it so that a plain `docker run` can write
# the embedded defaults (./recruiter.db, ./drafts, ./events); in Kubernetes the root filesystem is
# read-only and those paths point into emptyDir volumes instead.
RUN groupadd --system --gid 10001 recruiter \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin recruiter \
    && install -d -o 10001 -g 10001 -m 0750 /app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# HTTP: /healthz, /readyz, /metrics, /api/*, /cb/* (HTTP_PORT, default 8080). No HEALTHCHECK: the
# Kubernetes probes do that job.
EXPOSE 8080

ENTRYPOINT ["recruiter"]
CMD ["run"]
