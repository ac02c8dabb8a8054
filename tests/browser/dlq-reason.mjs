// The DLQ is filtered by reason, and "Redeliver all shown" redelivers only the entries shown.
// Usage: node dlq-reason.mjs <admin link> <reason> <sequence with it> <sequence without it>
import { run, check, baseOf } from "./lib.mjs";

const [link, reason, keep, other] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/dlq`);
  await page.locator(`#dlq tr[data-seq="${other}"]`).waitFor();
  await page.selectOption("#dlq-reason", reason);
  await page.locator(`#dlq tr[data-seq="${other}"]`).waitFor({ state: "detached" });
  check(await page.locator(`#dlq tr[data-seq="${keep}"]`).count() === 1, "the entry with the reason stays");
  check(await page.locator("button", { hasText: "Purge" }).isDisabled(), "purge is not offered for a reason");
  await page.click("text=Redeliver all shown");
  await page.locator("text=Redelivered 1, failed 0.").waitFor();
});
