# CI stand-in for nginx:1.26 (ci/compose-test; no registry here): Debian's nginx 1.22 with the
# official image's conventions that compose relies on: an `nginx` user for the workers, curl for
# the healthcheck, logs on stdout/stderr, SIGQUIT for a graceful stop, `sh` and `sed` for the
# command that renders the site template.
FROM debian:12.11-slim

RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx curl ca-certificates; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /etc/nginx/sites-enabled/*; \
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx; \
    ln -sf /dev/stdout /var/log/nginx/access.log; \
    ln -sf /dev/stderr /var/log/nginx/error.log

EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
