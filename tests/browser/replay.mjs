// A time range is replayed to one subscription from the console (the form's times are the
// viewer's local time), with a confirmation.
// Usage: node replay.mjs <admin link> <subscription id>
import { run, check, baseOf } from "./lib.mjs";

const [link, sub] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/replay/${sub}`);
  await page.locator("select[name=subscription_id]").waitFor();
  check(await page.locator("select[name=subscription_id]").inputValue() === sub, "the subscription is preselected");
  // datetime-local wants local time: an hour ago, as the viewer's clock shows it.
  const since = await page.evaluate(() => {
    const d = new Date(Date.now() - 3600e3);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  });
  await page.fill("input[name=since]", since);
  await page.click("button[type=submit]");
  await page.locator("#replay-outcome", { hasText: "Replay queued 1 delivery" }).waitFor();
});
