"""
Sign (and optionally send) an lms_bridge webhook, with the Python standard library only.

    LMS_BRIDGE_SCHEME=standard-webhooks LMS_BRIDGE_SECRET=whsec_... BODY='{"email": ...}' python3 sign.py
    ... URL=https://lms.example.com/api/lms-bridge/v1/webhooks/shop/ python3 sign.py

Without URL it prints the headers; WEBHOOK_ID and WEBHOOK_TIMESTAMP fix them (test vectors).
"""
import base64
import hashlib
import hmac
import os
import secrets
import time
import urllib.error
import urllib.request


def sign(scheme, secret, body, webhook_id, timestamp, header="X-Hub-Signature-256", prefix="sha256="):
    if scheme == "standard-webhooks":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": "v1," + signature}
    if scheme == "hmac-sha256":
        return {header: prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if scheme == "lernito":  # the raw body's HMAC, hex
        return {"X-Lernito-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    raise SystemExit(f"unknown scheme {scheme}")


def main():
    body = os.environ["BODY"].encode("utf-8")  # sign exactly the bytes you send
    headers = sign(os.environ["LMS_BRIDGE_SCHEME"], os.environ["LMS_BRIDGE_SECRET"], body,
                   os.environ.get("WEBHOOK_ID") or "msg_" + secrets.token_hex(12),
                   int(os.environ.get("WEBHOOK_TIMESTAMP") or time.time()),
                   os.environ.get("HMAC_HEADER", "X-Hub-Signature-256"), os.environ.get("HMAC_PREFIX", "sha256="))
    if not os.environ.get("URL"):
        for name, value in headers.items():
            print(f"{name}: {value}")
        return
    request = urllib.request.Request(os.environ["URL"], data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the operator's URL)
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as error:  # 4xx/5xx: see the status codes; retry only 429 and 5xx
        print(error.code, error.read().decode())
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
