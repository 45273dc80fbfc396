#!/bin/sh
# MinIO's command line for s3rver (compose/ci/s3rver.Dockerfile):
#   minio server DIR [--address [HOST]:PORT] [--console-address ADDR]
# runs s3rver on DIR, listening on PORT (default 9000) on every interface, path-style buckets
# only (as MinIO without MINIO_DOMAIN: "minio:9000" is a host, not a bucket). exec: s3rver (node)
# is PID 1 and exits on SIGTERM.
set -eu
if [ "${1:-}" != server ]; then
    echo "minio (s3rver stand-in): only 'server DIR' is supported, got: $*" >&2
    exit 2
fi
shift
dir=""
port=9000
while [ $# -gt 0 ]; do
    case $1 in
    --address)
        port=${2##*:}
        shift 2
        ;;
    --console-address)
        shift 2 # no console
        ;;
    --*)
        shift
        ;;
    *)
        dir=$1
        shift
        ;;
    esac
done
if [ -z "$dir" ]; then
    echo "minio (s3rver stand-in): no data directory given" >&2
    exit 2
fi
mkdir -p "$dir"
exec env NO_COLOR=1 FORCE_COLOR=0 node /opt/standins/node_modules/s3rver/bin/s3rver.js \
    --directory "$dir" --address 0.0.0.0 --port "$port" --no-vhost-buckets
