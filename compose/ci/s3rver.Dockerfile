# CI stand-in for minio/minio (ci/compose-test; no registry here): s3rver, an S3-compatible
# server, on Debian's Node 18. Its entrypoint accepts MinIO's command line (`server DIR
# [--address ADDR] [--console-address ADDR]`), so compose's minio service runs unchanged; the
# S3 API listens on 9000 and there is no console. s3rver accepts only the fixed credentials
# S3RVER/S3RVER (ci/compose-test sets them as the gateway's key). tini is PID 1 (node as PID 1
# would ignore SIGTERM).
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
    useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin s3; \
    mkdir -p /data; \
    chown s3:s3 /data
COPY --from=npm /opt/standins /opt/standins
COPY minio-standin.sh /usr/local/bin/minio
USER s3
EXPOSE 9000
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/minio"]
CMD ["server", "/data"]
