#!/bin/sh
# compose's one-shot MinIO setup (service minio-init, image minio/mc), idempotent:
#   - the raw-upload bucket TX_S3_BUCKET;
#   - policy txgateway-raw: s3:PutObject and s3:GetObject on <bucket>/raw/* and s3:ListBucket
#     on the bucket (storage/s3.h: the readiness probe reads a missing key under raw/, which MinIO
#     answers 404 only with ListBucket, 403 without);
#   - the gateway's own user TX_S3_GATEWAY_ACCESS_KEY / TX_S3_GATEWAY_SECRET_KEY with that
#     policy, and nothing else (the root credentials stay with this job and the console).
# Then it checks the gateway's key: it can write and read under raw/, and cannot write elsewhere.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${TX_S3_BUCKET:?}"
: "${TX_S3_GATEWAY_ACCESS_KEY:?}" "${TX_S3_GATEWAY_SECRET_KEY:?}"
export MC_CONFIG_DIR=/tmp/.mc

log() { printf 'minio-init: %s\n' "$*"; }

i=0
until mc alias set root "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 30 ]; then
        log "cannot log in to $MINIO_URL as the root user" >&2
        mc alias set root "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
        exit 1
    fi
    sleep 1
done

mc mb --ignore-existing "root/$TX_S3_BUCKET"

policy=/tmp/txgateway-raw.json
cat >"$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:GetObject"],
      "Resource": ["arn:aws:s3:::$TX_S3_BUCKET/raw/*"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:ListBucket"],
      "Resource": ["arn:aws:s3:::$TX_S3_BUCKET"]
    }
  ]
}
JSON
mc admin policy create root txgateway-raw "$policy"
# Creates the user, or sets the secret of an existing one.
mc admin user add root "$TX_S3_GATEWAY_ACCESS_KEY" "$TX_S3_GATEWAY_SECRET_KEY"
if ! out=$(mc admin policy attach root txgateway-raw --user "$TX_S3_GATEWAY_ACCESS_KEY" 2>&1); then
    case $out in
    *"already in effect"*) ;;
    *)
        printf '%s\n' "$out" >&2
        exit 1
        ;;
    esac
fi

# The gateway's key, as the gateway will use it.
mc alias set gateway "$MINIO_URL" "$TX_S3_GATEWAY_ACCESS_KEY" "$TX_S3_GATEWAY_SECRET_KEY" >/dev/null
probe="raw/.minio-init-probe"
echo probe | mc pipe "gateway/$TX_S3_BUCKET/$probe" >/dev/null
mc cat "gateway/$TX_S3_BUCKET/$probe" >/dev/null
mc rm "root/$TX_S3_BUCKET/$probe" >/dev/null
if echo probe | mc pipe "gateway/$TX_S3_BUCKET/outside-raw-probe" >/dev/null 2>&1; then
    mc rm "root/$TX_S3_BUCKET/outside-raw-probe" >/dev/null 2>&1 || true
    log "the gateway's key can write outside raw/: policy not applied" >&2
    exit 1
fi
log "bucket $TX_S3_BUCKET and user $TX_S3_GATEWAY_ACCESS_KEY (policy txgateway-raw) ready"
