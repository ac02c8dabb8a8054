"""A webhook receiver built the way the seed (non-Standard-Webhooks) Python libraries verify.

Owns: the reference algorithms hookline's seed-compatible signatures must satisfy.
- scheme "webhook_sha256": X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret string, raw body)>,
  plus X-Webhook-Event-Type, X-Webhook-Event-ID and X-Webhook-Timestamp (ISO-8601) present;
- scheme "x_signature": X-Signature: <hex HMAC-SHA256(secret string, body)> where the receiver
  re-serialises the parsed body with json.dumps(sort_keys=True, separators=(",", ":")).
Answers 200 when every requested check passes, 401 otherwise, and appends one JSON line per
request to --log (what was checked and the outcome) so the Rust test can assert on it.
Usage: seed_receiver.py --port P --secret whsec_... --scheme webhook_sha256|x_signature --log FILE
"""
import argparse
import hashlib
import hmac
import json
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer


def hex_hmac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def check_webhook_sha256(secret, headers, raw):
    sig = headers.get("X-Webhook-Signature", "")
    if not sig.startswith("sha256="):
        return False, "missing sha256= signature"
    if not hmac.compare_digest(sig[len("sha256="):], hex_hmac(secret, raw)):
        return False, "signature mismatch"
    for name in ("X-Webhook-Event-Type", "X-Webhook-Event-ID", "X-Webhook-Timestamp"):
        if not headers.get(name):
            return False, f"missing {name}"
    datetime.fromisoformat(headers["X-Webhook-Timestamp"].replace("Z", "+00:00"))
    return True, "ok"


def check_x_signature(secret, headers, raw):
    parsed = json.loads(raw)
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    expected = hex_hmac(secret, canonical)
    if not hmac.compare_digest(headers.get("X-Signature", ""), expected):
        return False, "signature mismatch"
    return True, "ok"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--scheme", action="append", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    checks = {"webhook_sha256": check_webhook_sha256, "x_signature": check_x_signature}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            results = {}
            for scheme in args.scheme:
                try:
                    results[scheme] = checks[scheme](args.secret, self.headers, raw)
                except Exception as e:  # a malformed request is a failed check, not a crash
                    results[scheme] = (False, repr(e))
            ok = all(r[0] for r in results.values())
            with open(args.log, "a") as f:
                f.write(json.dumps({"path": self.path, "ok": ok, "results": results,
                                    "event_id": self.headers.get("X-Webhook-Event-ID") or self.headers.get("webhook-id"),
                                    "body": raw.decode()}) + "\n")
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
