// A subscription's view shows a delivery without reloading: prints "ready" once the view is
// up, then waits for an attempt of <event id> with <status> to appear.
// Usage: node delivery.mjs <link> <subscription id> <event id> <status> <screenshot file or ->
//   [text the attempt's row must show, e.g. its HTTP code and response excerpt]...
import { run, check, baseOf } from "./lib.mjs";

const [link, sub, eventId, status, shot, ...texts] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/subscription/${sub}`);
  await page.locator("#attempts").waitFor();
  console.log("ready");
  const row = page.locator(`#attempts tr[data-event="${eventId}"]`, { has: page.locator(`td.status-${status}`) }).first();
  await row.waitFor();
  const text = await row.textContent();
  for (const t of texts) check(text.includes(t), `the attempt shows ${t}: ${text}`);
  if (shot !== "-") await page.screenshot({ path: shot });
});
