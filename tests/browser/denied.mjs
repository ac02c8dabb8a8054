// An expired or altered link shows "link expired or invalid" and no data.
// Usage: node denied.mjs <link> [screenshot file]
import { run, check } from "./lib.mjs";

const [link, shot] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator(".denied").waitFor();
  check((await page.locator(".denied").textContent()).toLowerCase().includes("link expired or invalid"), "the message says why");
  check(await page.locator("table").count() === 0, "no data is shown");
  check(await page.locator("#nav").isHidden(), "no navigation");
  if (shot) await page.screenshot({ path: shot });
});
