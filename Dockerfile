# Image of the accuinsight-rpa jobs. The entrypoint is `python -m`, so the command picks the
# job module. It is `rpa.modeler` by default, and each CronJob passes its own (k8s/cronjobs/).
#
#   docker build -t accuinsight-rpa:0.1.0 .
#   docker run --rm accuinsight-rpa:0.1.0 rpa.modeler --help
#
# NOTE: no lock file pins the dependencies yet, so each build resolves the newest versions
# that the ranges in pyproject.toml allow. Pin the base image by digest as well as by tag
# when the registry that serves production is known.

# Build stage: a wheel of this package plus wheels of its runtime dependencies (no extras),
# installed into a virtual environment that the runtime stage copies whole.
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# README.md is the package's long description, which pyproject.toml names.
COPY pyproject.toml README.md ./
COPY rpa ./rpa

# Every dependency ships binary wheels for CPython 3.11 on Linux (x86_64 and aarch64), so no
# compiler is needed. The venv gets no pip of its own, because the stage's pip installs into it
# with --python.
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-index --find-links /wheels \
        /wheels/accuinsight_rpa-*.whl

# Runtime stage: the interpreter, the venv and a non-root user, without wheels, caches or
# compilers.
FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="accuinsight-rpa" \
      org.opencontainers.image.description="Jobs that reconcile the Accuinsight+ trial accounts on AWS with their records in Vault"

# The CronJobs set runAsUser and runAsGroup to 10001 as well; change them together.
RUN groupadd --system --gid 10001 rpa \
    && useradd --system --no-log-init --uid 10001 --gid rpa \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin rpa

COPY --from=build /opt/venv /opt/venv

# The root file system is read-only in the cluster. pip compiled the bytecode at install time,
# so Python need not write any.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /tmp

ENTRYPOINT ["python", "-m"]
CMD ["rpa.modeler"]
