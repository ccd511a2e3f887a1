# syntax=docker/dockerfile:1
# spegel-py node image: `python manage.py registry` (the default), `configuration`, `cleanup`.
#
#   docker build -t <your-registry>/spegel-py:0.1.0 .
#
# The image can run as the numeric non-root user below; the Helm chart runs it as root by
# default (like the reference) because it reads containerd's socket and content store and writes
# containerd's hosts.toml directory on the node.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. Front-end libraries of the visualize page, exact versions from package-lock.json (no CDN
#    at run time: clusters are often air-gapped).
FROM ${NODE_IMAGE} AS static
WORKDIR /src/visualize
COPY visualize/package.json visualize/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

# 2. Virtualenv with the runtime requirements. libp2p pins fastecdsa, which builds from source
#    against GMP, so the compiler and headers stay in this stage.
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libgmp-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY requirements.txt ./
# Only the "# Runtime" part of requirements.txt: test tools (pytest, playwright, ...) stay out.
RUN sed -n '/^# Runtime/,/^# Build and test/p' requirements.txt > runtime-requirements.txt \
    && grep -q '^Django==' runtime-requirements.txt \
    && pip install -r runtime-requirements.txt \
    && rm runtime-requirements.txt
COPY manage.py pyproject.toml ./
COPY spegel_site ./spegel_site
COPY registry ./registry
COPY routing ./routing
COPY visualize ./visualize
COPY --from=static /src/visualize/node_modules ./visualize/node_modules
# Vendor the npm bundle into visualize/static and collect static files (make static).
RUN python visualize/build_static.py \
    && rm -rf visualize/node_modules \
    && python -m compileall -q /app

# 3. Runtime image: the venv, the app and the shared GMP library fastecdsa links to.
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgmp10 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 spegel \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/spegel --no-create-home spegel \
    && install -d -o 65532 -g 65532 /var/lib/spegel
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 65532:65532
# 5000 registry (/v2, /readyz, /livez), 5001 router (libp2p TCP), 5002 HTTP bootstrap (peer id
# lookup for dns bootstrap), 9090 admin (/metrics, /visualize/, /admin/).
EXPOSE 5000 5001 5002 9090
ENTRYPOINT ["python", "manage.py"]
CMD ["registry"]
