// "Send a test event" on a subscription's view shows the outcome of that one attempt, and the
// attempt appears in the view's live attempts.
// Usage: node test-event.mjs <link> <subscription id> <text the outcome shows>
import { run, check, baseOf } from "./lib.mjs";

const [link, sub, expected] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/subscription/${sub}`);
  await page.locator("#attempts").waitFor();
  await page.click("#send-test");
  const outcome = page.locator("#test-outcome");
  await outcome.waitFor();
  const text = await outcome.textContent();
  check(text.includes(expected), `the outcome says ${expected}: ${text}`);
  await page.locator("#attempts tr", { hasText: "webhook.test" }).first().waitFor();
});
