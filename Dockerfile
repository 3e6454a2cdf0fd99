# corral serving the example app (examples/hello). Build and run:
#   docker build -t corral .
#   docker run --rm -p 8000:8000 -p 9000:9000 -e WEB_CONCURRENCY=4 corral
# Configuration comes from the environment (PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS and
# CORRAL_<OPTION> variables); see docs/deployment.md. For your own app, copy your code and your
# virtualenv's packages instead of examples/ and change --app-dir and APP in CMD.

# Node 24 LTS; corral also runs on Node 20.19+ and 22 (package.json engines).
ARG NODE_VERSION=24
ARG PYTHON_VERSION=3.12

# The Node.js runtime, taken from the official image (same Debian release as the Python image).
FROM node:${NODE_VERSION}-bookworm-slim AS node

# corral itself: npm packages and the TypeScript build, then only the production packages.
FROM node AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# The workers' virtualenv: uvicorn and the app's packages.
FROM python:${PYTHON_VERSION}-slim-bookworm AS venv
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt

FROM python:${PYTHON_VERSION}-slim-bookworm
# tini is PID 1: it reaps orphaned processes and forwards signals to corral. Without it corral would
# run its own init (corral-init, docs/deployment.md), but on Node 20 that keeps a second Node process
# as PID 1 (~10 MB of its own, more in RSS); tini costs under 1 MB.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin corral
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY src/python ./src/python
COPY examples ./examples
USER corral
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    CORRAL_METRICS_BIND=0.0.0.0:9000 \
    CORRAL_GRACEFUL_TIMEOUT=25 \
    CORRAL_LOG_FORMAT=json
EXPOSE 8000 9000
# /readyz answers 200 once a worker is ready (--metrics-bind, here from CORRAL_METRICS_BIND).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/readyz', timeout=2)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "/app/bin/corral.js", "--app-dir", "/app/examples/hello", "app:app"]
