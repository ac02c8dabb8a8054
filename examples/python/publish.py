"""Publish an event to hookline from Python with nats-py: as hookline's WebhookEvent JSON, or as a
CloudEvent in the NATS protocol binding's binary or structured mode, with a W3C traceparent.

    python publish.py --nats nats://127.0.0.1:4222 --prefix hookline --type order.created \
        --id evt_1 --format webhook|cloudevent-binary|cloudevent-structured \
        [--payload '{"order": 42}'] [--traceparent 00-<32 hex>-<16 hex>-01] [--tenant acme]

Events go to the JetStream subject <prefix>.events.<type>; the JetStream publish waits for the
stream's acknowledgement, so a zero exit means hookline's event log holds the event.
"""

import argparse
import asyncio
import json
import urllib.parse
from datetime import datetime, timezone

import nats


def percent_encode(value: str) -> str:
    # The NATS binding percent-encodes header values that are not printable ASCII (and '%').
    return urllib.parse.quote(value, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--prefix", default="hookline")
    p.add_argument("--type", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--format", default="webhook",
                   choices=["webhook", "cloudevent-binary", "cloudevent-structured"])
    p.add_argument("--payload", default='{"example": true}')
    p.add_argument("--traceparent")
    p.add_argument("--tenant")
    p.add_argument("--source", default="/examples/python")
    args = p.parse_args()

    data = json.loads(args.payload)
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    subject = f"{args.prefix}.events.{args.type}"
    # The message id makes a retried publish harmless: JetStream keeps one copy per id.
    headers = {"Nats-Msg-Id": args.id}
    if args.traceparent:
        headers["traceparent"] = args.traceparent

    if args.format == "webhook":
        event = {"event_id": args.id, "event_type": args.type, "payload": data,
                 "occurred_at": now, "source": args.source}
        if args.tenant:
            event["tenant_id"] = args.tenant
        body = json.dumps(event).encode()
    elif args.format == "cloudevent-binary":
        headers.update({
            "ce-specversion": "1.0", "ce-id": args.id, "ce-type": args.type,
            "ce-source": percent_encode(args.source), "ce-time": now,
            "content-type": "application/json",
        })
        if args.tenant:
            headers["ce-tenantid"] = percent_encode(args.tenant)
        body = json.dumps(data).encode()
    else:
        event = {"specversion": "1.0", "id": args.id, "type": args.type, "source": args.source,
                 "time": now, "datacontenttype": "application/json", "data": data}
        if args.tenant:
            event["tenantid"] = args.tenant
        if args.traceparent:
            event["traceparent"] = args.traceparent  # the distributed-tracing extension
        headers["content-type"] = "application/cloudevents+json"
        body = json.dumps(event).encode()

    nc = await nats.connect(args.nats)
    try:
        ack = await nc.jetstream().publish(subject, body, headers=headers)
        print(json.dumps({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
