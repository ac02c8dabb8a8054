"""A webhook receiver in Python that verifies hookline's signatures with the official Standard
Webhooks library (PyPI `standardwebhooks`), then answers 204; a request that fails verification
gets 400 and is not processed.

    python receiver.py --port 8000 --secret whsec_... [--log deliveries.jsonl]

Each verified delivery is printed as a JSON line (and appended to --log): its webhook-id, the
event (as the library returns it), and the traceparent it carried.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--log")
    args = p.parse_args()
    webhook = Webhook(args.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = webhook.verify(body, headers)
            except Exception as e:  # WebhookVerificationError: not from hookline, or tampered
                record = {"ok": False, "error": str(e), "id": headers.get("webhook-id")}
                status = 400
            else:
                record = {"ok": True, "id": headers["webhook-id"], "event": event,
                          "traceparent": headers.get("traceparent"),
                          "content_type": headers.get("content-type")}
                status = 204
            line = json.dumps(record)
            print(line, flush=True)
            if args.log:
                with open(args.log, "a") as f:
                    f.write(line + "\n")
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
