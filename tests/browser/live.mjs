// The overview is live: once it is shown ("ready"), the deliveries the test makes raise its
// deliveries-per-second card without a reload; the live tail ("tail") then shows the next
// event's attempt as it happens. Screenshots: the live tail.
// Usage: node live.mjs <admin link> <event id for the tail> <screenshot dir>
import { run, check, baseOf } from "./lib.mjs";

const [link, tailEvent, shots] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#live-state", { hasText: "Live" }).waitFor();
  console.log("ready");
  // The rate of the last 10 s comes from the feed's ticks only (before them, the stored 5 min).
  await page.waitForFunction(() => document.querySelector("#stat-rate .k")?.textContent.includes("last 10 s")
    && parseFloat(document.querySelector("#stat-rate .v").textContent) > 0);
  check(/\d+(\.\d)?%/.test(await page.locator("#stat-success .v").textContent()), "the success rate is shown");
  await page.goto(`${baseOf(link)}/console#/live`);
  await page.locator("#live-state", { hasText: "Following" }).waitFor();
  console.log("tail");
  await page.locator(`#tail tr[data-event="${tailEvent}"] td.status-succeeded`).waitFor();
  await page.screenshot({ path: `${shots}/console-live.png` });
});
