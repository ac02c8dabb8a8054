"""An independent check that hookline's `cloudevents` / `cloudevents_binary` deliveries are valid
CloudEvents: each request is read with the CloudEvents Python SDK (PyPI `cloudevents`, pinned by
scripts/ensure-deps.sh), `cloudevents.http.from_http`, which refuses a request that is not one.

Input (stdin): a JSON list of requests {"headers": {name: value}, "body_b64"}. Output (stdout):
a JSON list, per request, of {"attributes": {...}, "data": <JSON data, or {"base64": ...} for
bytes>}. The SDK (1.x) does not percent-decode binary-mode header values, so string attributes
of binary-mode requests are decoded here once (urllib's `unquote`, UTF-8) as the HTTP binding
says. Any request the SDK refuses fails the whole run (non-zero exit, the reason on stderr).
"""
import base64
import json
import sys
from urllib.parse import unquote

from cloudevents.http import from_http


def read(request):
    headers = request["headers"]
    body = base64.b64decode(request["body_b64"])
    event = from_http(headers, body)
    binary = not headers.get("content-type", "").startswith("application/cloudevents")
    attributes = {}
    for name, value in event.get_attributes().items():
        if binary and isinstance(value, str):
            value = unquote(value, encoding="utf-8", errors="strict")
        attributes[name] = value
    data = event.data
    if isinstance(data, (bytes, bytearray)):
        data = {"base64": base64.b64encode(data).decode()}
    return {"attributes": attributes, "data": data}


def main():
    requests = json.load(sys.stdin)
    json.dump([read(r) for r in requests], sys.stdout, default=str)


if __name__ == "__main__":
    main()
