# CI stand-in for axllent/mailpit (ci/compose-test; no registry here): maildev, an SMTP sink
# with a web UI and REST API, on Debian's Node 18, on Mailpit's ports: SMTP 1025, HTTP 8025.
# Its API differs from Mailpit's (GET /email lists the messages); ci/compose-test reads both.
# tini is PID 1 (node as PID 1 would ignore SIGTERM).
FROM debian:12.11-slim AS npm
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nodejs npm ca-certificates; \
    rm -rf /var/lib/apt/lists/*
ARG NPM_REGISTRY=
WORKDIR /opt/standins
COPY npm/package.json npm/package-lock.json ./
RUN set -eux; \
    if [ -n "$NPM_REGISTRY" ]; then export npm_config_registry="$NPM_REGISTRY"; fi; \
    npm ci --omit=dev --no-audit --no-fund --loglevel=error \
        --cafile /etc/ssl/certs/ca-certificates.crt; \
    rm -rf /root/.npm

FROM debian:12.11-slim
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nodejs curl ca-certificates tini; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    useradd --system --uid 10003 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin mail-sink; \
    mkdir -p /data; \
    chown mail-sink:mail-sink /data
COPY --from=npm /opt/standins /opt/standins
USER mail-sink
ENV NO_COLOR=1 FORCE_COLOR=0
EXPOSE 1025 8025
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "/opt/standins/node_modules/maildev/bin/maildev", "--ip", "0.0.0.0", \
     "--smtp", "1025", "--web", "8025", "--mail-directory", "/data"]
