# CI stand-in for redis/redis-stack:7.2 (ci/compose-test; no registry here): Debian's Redis 7.0
# started the way redis-stack's entrypoint starts it: /redis-stack.conf (compose mounts
# volumes/redis/redis.conf there), --dir /data, REDIS_ARGS appended. No modules, no RedisInsight
# (txpipe uses neither).
FROM debian:12.11-slim

RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    mkdir -p /data; \
    chown redis:redis /data

COPY redis-entrypoint.sh /entrypoint.sh
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["/entrypoint.sh"]
