# CI stand-in for rabbitmq:3.13-management (ci/compose-test; no registry here): Debian's
# RabbitMQ 3.10 with its bundled management and prometheus plugins, laid out like the official
# image: config in /etc/rabbitmq (compose mounts rabbitmq.conf, definitions.json and
# enabled_plugins there), data in /var/lib/rabbitmq, logs on stdout, node rabbit@<hostname>,
# rabbitmq-server as PID 1 (it turns SIGTERM into a clean broker stop).
FROM debian:12.11-slim

RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        rabbitmq-server curl ca-certificates; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/lib/rabbitmq/mnesia; \
    mkdir -p /var/lib/rabbitmq /etc/rabbitmq; \
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq

ENV HOME=/var/lib/rabbitmq \
    PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RABBITMQ_CONFIG_FILE=/etc/rabbitmq/rabbitmq.conf \
    RABBITMQ_ENABLED_PLUGINS_FILE=/etc/rabbitmq/enabled_plugins \
    RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia \
    RABBITMQ_LOG_BASE=/var/lib/rabbitmq/log \
    RABBITMQ_LOGS=-

USER rabbitmq
WORKDIR /var/lib/rabbitmq
EXPOSE 5672 15672 15692
CMD ["rabbitmq-server"]
