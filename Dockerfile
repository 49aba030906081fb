# syntax=docker/dockerfile:1
# The cfgsync controller image. From the repository root:
#
#   docker build -t harbor.example.com/platform/cfgsync:0.1.0 .
#
# Without internet access, put a wheelhouse in ./wheelhouse first and add --build-arg PIP_NO_INDEX=1
# (docs/install.md). No Docker engine is needed to check this recipe: tests/deploy/test_image_recipe.py
# reads the RUN steps below and runs them as they are (in a temporary directory instead of /src, /wheels
# and /opt/cfgsync), then starts `cfgsync run` from the result against a real API server.

# The bases: PYTHON_IMAGE runs the build stage (a shell, Python with venv and ensurepip), RUNTIME_IMAGE
# is what the image runs on (Python only; by default the same image). Both must hold the same Python at
# the same path, because the virtual environment built in one runs on the other. Air-gapped, without a
# registry mirror, build both from Debian's packages (deploy/base/python-base.sh, docs/install.md):
#   --build-arg PYTHON_IMAGE=localhost/cfgsync-python:build --build-arg RUNTIME_IMAGE=localhost/cfgsync-python:run
# With a mirror, pin its digest: --build-arg PYTHON_IMAGE=<mirror>/python:3.12-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG RUNTIME_IMAGE=${PYTHON_IMAGE}

FROM ${PYTHON_IMAGE} AS build
# Passed through to pip: PIP_NO_INDEX=1 builds from ./wheelhouse alone; PIP_INDEX_URL names a mirror.
ARG PIP_NO_INDEX
ARG PIP_INDEX_URL
# Plugins (your own transforms): their wheels in ./wheelhouse, their names here, e.g. "a b".
ARG EXTRA_PACKAGES=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SRC=/src \
    WHEELS=/wheels \
    BUILD_VENV=/opt/build \
    VENV=/opt/cfgsync
WORKDIR /src
# .dockerignore lets in only what the wheel is built from (and ./wheelhouse, if there is one).
COPY . /src
# pip for the build only, in a virtual environment of its own (PEP 668: never the base's Python).
RUN python -m venv "$BUILD_VENV"
# cfgsync's wheel, built from these sources, and its dependencies' wheels (from ./wheelhouse first).
RUN "$BUILD_VENV/bin/python" -m pip wheel --wheel-dir "$WHEELS" --find-links "$SRC/wheelhouse" "$SRC"
# Installed from the wheelhouse only: no index is consulted, so no other project named cfgsync can get in.
# The environment has no pip of its own: nothing in the running container can install packages.
RUN python -m venv --without-pip "$VENV" \
    && "$BUILD_VENV/bin/python" -m pip --python "$VENV/bin/python" install --no-index --find-links "$WHEELS" \
       --find-links "$SRC/wheelhouse" cfgsync $EXTRA_PACKAGES \
    && "$VENV/bin/cfgsync" --version
# The Kubernetes client's asyncio half (kubernetes/aio, about 70 MB with its bytecode) is never imported
# by cfgsync, which uses the synchronous client; without it the image stays well under 200 MB.
RUN rm -rf "$VENV"/lib/python3*/site-packages/kubernetes/aio

FROM ${RUNTIME_IMAGE}
# VERSION follows pyproject.toml (a test checks); SOURCE is the repository you built from, e.g.
#   --build-arg SOURCE="$(git remote get-url origin)"
ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="cfgsync" \
      org.opencontainers.image.description="Keeps ConfigMaps and Secrets copied across namespaces and clusters; a drop-in successor to kubed's config-syncer." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# No package manager at run time, whatever the base brings: apt and dpkg, pip, and what could fetch pip
# again (ensurepip, Debian's python-wheels). A no-op on the base built from Debian's packages, which has
# none of them; Python rather than a shell, because that base has no shell.
RUN ["python", "-c", "import glob, os, shutil; [shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p) for g in ('/usr/bin/apt*', '/usr/bin/dpkg*', '/usr/sbin/dpkg*', '/usr/lib/apt', '/usr/lib/dpkg', '/etc/apt', '/var/lib/apt', '/var/cache/apt', '/usr/local/bin/pip*', '/usr/local/lib/python3*/site-packages/pip', '/usr/local/lib/python3*/site-packages/pip-*', '/usr/lib/python3/dist-packages/pip', '/usr/local/lib/python3*/ensurepip', '/usr/lib/python3*/ensurepip', '/usr/share/python-wheels') for p in glob.glob(g)]"]
# The virtual environment only: no compiler, no pip, no wheels, no sources.
COPY --from=build /opt/cfgsync /opt/cfgsync
# Bytecode was compiled at install time; writing none at run time keeps a read-only root filesystem happy.
ENV PATH=/opt/cfgsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["cfgsync"]
CMD ["run"]
