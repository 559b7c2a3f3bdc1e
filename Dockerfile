# The reconciler's image: `meshward serve` (and `meshward agent`, the same program, in injected pods).
# Two stages: the first installs meshward and its dependencies into a virtualenv (with a compiler at hand for any
# dependency that has no wheel for the platform); the second copies only that virtualenv onto a slim Python, with
# git (GitPython runs it) and ssh (ssh repositories, --verify-signatures) and no compiler.
# No Envoy: the reconciler never runs one; injected pods take Envoy from its upstream image (`meshward inject`).
# Runs as a numeric non-root user, so that `runAsNonRoot` can check it, and with a read-only root filesystem: it
# writes only to $TMPDIR (the clone and the per-commit exports), which the Deployment mounts as an emptyDir.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/meshward
COPY pyproject.toml README.md /src/
COPY compiler /src/compiler
COPY meshxds /src/meshxds
COPY reconciler /src/reconciler
COPY meshward /src/meshward
RUN /opt/meshward/bin/pip install --no-cache-dir /src

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/meshward /opt/meshward
ENV PATH=/opt/meshward/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["meshward", "serve"]
