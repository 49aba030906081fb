# syntax=docker/dockerfile:1
# cfgsync's three images, from one recipe so that they cannot drift apart (and share their layers). From
# the repository root:
#
#   docker build -t harbor.example.com/platform/cfgsync:0.1.0 .                       # the controller
#   docker build --target cmp -t harbor.example.com/platform/cfgsync-cmp:0.1.0 .      # Argo CD plugin sidecar
#   docker build --target krm -t harbor.example.com/platform/cfgsync-krm:0.1.0 .      # KRM function
#
# Without internet access, put a wheelhouse in ./wheelhouse first and add --build-arg PIP_NO_INDEX=1
# (docs/install.md). Plugins (your own transforms) go in the same way: their wheels in ./wheelhouse, their
# names in --build-arg EXTRA_PACKAGES="a b". No Docker engine is needed to check this recipe:
# tests/deploy/test_image_recipe.py and test_plugin_images.py read the RUN steps below and run them as
# they are (in a temporary directory instead of /src, /wheels and /opt/cfgsync), then start each target's
# entrypoint from the result.

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

FROM ${RUNTIME_IMAGE} AS runtime
# VERSION follows pyproject.toml (a test checks); SOURCE is the repository you built from, e.g.
#   --build-arg SOURCE="$(git remote get-url origin)"
ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.version="${VERSION}" \
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

# --target cmp: the Argo CD plugin sidecar. Argo CD provides the plugin server (argocd-cmp-server)
# through the repo server's var-files volume; the sidecar's command is /var/run/argocd/argocd-cmp-server.
FROM runtime AS cmp
LABEL org.opencontainers.image.title="cfgsync-cmp" \
      org.opencontainers.image.description="cfgsync as an Argo CD config-management plugin (repo-server sidecar)."
ENV HOME=/tmp
# Argo CD's user (the repo server and its plugins share the socket volume), numeric so that Kubernetes
# can check runAsNonRoot without /etc/passwd.
USER 999:999
WORKDIR /tmp

# --target krm: `cfgsync krm` reads a ResourceList on stdin and writes it back with the copies added.
FROM runtime AS krm
LABEL org.opencontainers.image.title="cfgsync-krm" \
      org.opencontainers.image.description="cfgsync as a KRM function: copies ConfigMaps and Secrets into the namespaces their rules select."
# kustomize and kpt run functions without network and as an unprivileged user; numeric, as for the
# controller.
USER 65532:65532
ENTRYPOINT ["cfgsync", "krm"]

# The default target, last: the controller the chart deploys.
FROM runtime AS controller
LABEL org.opencontainers.image.title="cfgsync" \
      org.opencontainers.image.description="Keeps ConfigMaps and Secrets copied across namespaces and clusters; a drop-in successor to kubed's config-syncer."
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["cfgsync"]
CMD ["run"]
