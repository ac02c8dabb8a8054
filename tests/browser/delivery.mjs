// A subscription's view shows a delivery without reloading: prints "ready" once the view is
// up, then waits for an attempt of <event id> with <status> to appear.
// Usage: node delivery.mjs <link> <subscription id> <event id> <status> <screenshot file or ->
import { run, baseOf } from "./lib.mjs";

const [link, sub, eventId, status, shot] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/subscription/${sub}`);
  await page.locator("#attempts").waitFor();
  console.log("ready");
  await page.locator(`#attempts tr[data-event="${eventId}"] td.status-${status}`).first().waitFor();
  if (shot !== "-") await page.screenshot({ path: shot });
});
