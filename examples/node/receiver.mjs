// A webhook receiver in Node that verifies hookline's signatures with the official Standard
// Webhooks library (npm `standardwebhooks`), then answers 204; a request that fails verification
// gets 400 and is not processed.
//
//   node receiver.mjs --port 8000 --secret whsec_... [--log deliveries.jsonl]
//
// Each verified delivery is printed as a JSON line (and appended to --log): its webhook-id, the
// event (as the library returns it), and the traceparent it carried.
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";

const { values: a } = parseArgs({
  options: { port: { type: "string" }, secret: { type: "string" }, log: { type: "string" } },
});
const webhook = new Webhook(a.secret);

createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    // Verify the raw body exactly as received: re-serialised JSON would not match.
    const body = Buffer.concat(chunks).toString("utf8");
    let record;
    try {
      const event = webhook.verify(body, req.headers);
      record = { ok: true, id: req.headers["webhook-id"], event,
        traceparent: req.headers.traceparent ?? null, content_type: req.headers["content-type"] };
      res.writeHead(204).end();
    } catch (e) {
      record = { ok: false, error: String(e), id: req.headers["webhook-id"] ?? null };
      res.writeHead(400).end();
    }
    const line = JSON.stringify(record);
    console.log(line);
    if (a.log) appendFileSync(a.log, line + "\n");
  });
}).listen(Number(a.port), "127.0.0.1");
