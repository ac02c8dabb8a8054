// Publish an event to hookline from Node with @nats-io/transport-node: as hookline's
// WebhookEvent JSON, or as a CloudEvent in the NATS protocol binding's binary or structured mode,
// with a W3C traceparent.
//
//   node publish.mjs --nats nats://127.0.0.1:4222 --prefix hookline --type order.created \
//     --id evt_1 --format webhook|cloudevent-binary|cloudevent-structured \
//     [--payload '{"order": 42}'] [--traceparent 00-<32 hex>-<16 hex>-01] [--tenant acme]
//
// Events go to <prefix>.events.<type>; the JetStream publish resolves once the stream stored it.
import { parseArgs } from "node:util";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

const { values: a } = parseArgs({
  options: {
    nats: { type: "string", default: "nats://127.0.0.1:4222" },
    prefix: { type: "string", default: "hookline" },
    type: { type: "string" },
    id: { type: "string" },
    format: { type: "string", default: "webhook" },
    payload: { type: "string", default: '{"example": true}' },
    traceparent: { type: "string" },
    tenant: { type: "string" },
    source: { type: "string", default: "/examples/node" },
  },
});
if (!a.type || !a.id) throw new Error("--type and --id are required");

// The NATS binding percent-encodes header values outside printable ASCII (and '%').
const pct = (v) => v.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
const data = JSON.parse(a.payload);
const now = new Date().toISOString();
const h = headers();
// The message id makes a retried publish harmless: JetStream keeps one copy per id.
h.set("Nats-Msg-Id", a.id);
if (a.traceparent) h.set("traceparent", a.traceparent);

let body;
if (a.format === "webhook") {
  body = { event_id: a.id, event_type: a.type, payload: data, occurred_at: now, source: a.source };
  if (a.tenant) body.tenant_id = a.tenant;
} else if (a.format === "cloudevent-binary") {
  h.set("ce-specversion", "1.0");
  h.set("ce-id", a.id);
  h.set("ce-type", a.type);
  h.set("ce-source", pct(a.source));
  h.set("ce-time", now);
  h.set("content-type", "application/json");
  if (a.tenant) h.set("ce-tenantid", pct(a.tenant));
  body = data;
} else if (a.format === "cloudevent-structured") {
  body = { specversion: "1.0", id: a.id, type: a.type, source: a.source, time: now,
    datacontenttype: "application/json", data };
  if (a.tenant) body.tenantid = a.tenant;
  if (a.traceparent) body.traceparent = a.traceparent; // the distributed-tracing extension
  h.set("content-type", "application/cloudevents+json");
} else {
  throw new Error(`unknown --format ${a.format}`);
}

const nc = await connect({ servers: a.nats });
try {
  const ack = await jetstream(nc).publish(`${a.prefix}.events.${a.type}`, JSON.stringify(body), { headers: h });
  console.log(JSON.stringify({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate }));
} finally {
  await nc.close();
}
