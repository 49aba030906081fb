# syntax=docker/dockerfile:1
# The cfgsync controller image. From the repository root:
#
#   docker build -t harbor.example.com/platform/cfgsync:0.1.0 .
#
# Without internet access, put a wheelhouse in ./wheelhouse first and add --build-arg PIP_NO_INDEX=1
# (docs/install.md). No Docker engine is needed to check this recipe: tests/deploy/test_image_recipe.py
# reads the RUN steps below and runs them as they are (in a temporary directory instead of /src, /wheels
# and /opt/cfgsync), then starts `cfgsync run` from the result against a real API server.

# A slim Debian-based Python. For a reproducible build, pin the digest your registry mirror serves:
#   --build-arg PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Passed through to pip: PIP_NO_INDEX=1 builds from ./wheelhouse alone; PIP_INDEX_URL names a mirror.
ARG PIP_NO_INDEX
ARG PIP_INDEX_URL
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SRC=/src \
    WHEELS=/wheels \
    VENV=/opt/cfgsync
WORKDIR /src
# .dockerignore lets in only what the wheel is built from (and ./wheelhouse, if there is one).
COPY . /src
# Every wheel the image needs, cfgsync's own included, built or fetched once.
RUN python -m pip wheel --wheel-dir "$WHEELS" --find-links "$SRC/wheelhouse" "$SRC"
# Installed from those wheels only, so the index is never consulted twice.
RUN python -m venv "$VENV" \
    && "$VENV/bin/python" -m pip install --no-index --find-links "$WHEELS" cfgsync \
    && "$VENV/bin/cfgsync" --version

FROM ${PYTHON_IMAGE}
# VERSION follows pyproject.toml (a test checks); SOURCE is the repository you built from, e.g.
#   --build-arg SOURCE="$(git remote get-url origin)"
ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="cfgsync" \
      org.opencontainers.image.description="Keeps ConfigMaps and Secrets copied across namespaces and clusters; a drop-in successor to kubed's config-syncer." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The virtual environment only: no compiler, no pip cache, no wheels, no sources.
COPY --from=build /opt/cfgsync /opt/cfgsync
# Bytecode was compiled at install time; writing none at run time keeps a read-only root filesystem happy.
ENV PATH=/opt/cfgsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["cfgsync"]
CMD ["run"]
