// Event lookup shows an event's attempts per subscription, and the event is replayed from it.
// Usage: node event.mjs <admin link> <event id> <subscription id> <screenshot file or ->
import { run } from "./lib.mjs";

const [link, eventId, sub, shot] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.click("text=Event lookup");
  await page.fill("input[name=event_id]", eventId);
  await page.click("text=Look up");
  await page.locator(`#timeline tr[data-subscription="${sub}"] td.status-succeeded`).first().waitFor();
  if (shot !== "-") await page.screenshot({ path: shot });
  await page.click("text=Replay this event");
  await page.locator("text=Replay queued 1 delivery.").waitFor();
});
