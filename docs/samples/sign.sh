#!/bin/sh
# Sign (and optionally send) an lms_bridge webhook with openssl and curl.
#   LMS_BRIDGE_SCHEME=standard-webhooks LMS_BRIDGE_SECRET=whsec_... BODY='{"email": ...}' sh sign.sh
# Without URL it prints the headers; WEBHOOK_ID and WEBHOOK_TIMESTAMP fix them (test vectors).
set -eu
id="${WEBHOOK_ID:-msg_$(openssl rand -hex 12)}"
timestamp="${WEBHOOK_TIMESTAMP:-$(date +%s)}"
header="${HMAC_HEADER:-X-Hub-Signature-256}"
prefix="${HMAC_PREFIX-sha256=}"
case "$LMS_BRIDGE_SCHEME" in
  standard-webhooks)
    key_hex=$(printf '%s' "${LMS_BRIDGE_SECRET#whsec_}" | openssl base64 -d -A | od -An -v -tx1 | tr -d ' \n')
    signature=$(printf '%s.%s.%s' "$id" "$timestamp" "$BODY" \
      | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key_hex" -binary | openssl base64 -A)
    set -- -H "webhook-id: $id" -H "webhook-timestamp: $timestamp" -H "webhook-signature: v1,$signature" ;;
  hmac-sha256)
    digest=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$LMS_BRIDGE_SECRET" -r | cut -d' ' -f1)
    set -- -H "$header: $prefix$digest" ;;
  lernito)  # the raw body's HMAC, hex
    digest=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$LMS_BRIDGE_SECRET" -r | cut -d' ' -f1)
    set -- -H "X-Lernito-Signature: $digest" ;;
  *) echo "unknown scheme $LMS_BRIDGE_SCHEME" >&2; exit 2 ;;
esac
if [ -z "${URL:-}" ]; then
  while [ $# -gt 0 ]; do printf '%s\n' "$2"; shift 2; done
  exit 0
fi
# --data-binary sends the body's bytes exactly as signed; --fail-with-body exits non-zero on 4xx/5xx.
curl --silent --show-error --fail-with-body -X POST -H "Content-Type: application/json" "$@" \
  --data-binary "$BODY" "$URL"
echo
