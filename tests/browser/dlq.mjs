// The overview counts the dead letter, and the entry is inspected and redelivered from the
// console. Screenshots: the overview, the DLQ.
// Usage: node dlq.mjs <admin link> <sequence> <screenshot dir>
import { run, check, baseOf } from "./lib.mjs";

const [link, seq, shots] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#stat-dlq .v", { hasText: /^[1-9]/ }).waitFor();
  await page.screenshot({ path: `${shots}/console-overview.png` });
  await page.goto(`${baseOf(link)}/console#/dlq`);
  const row = page.locator(`#dlq tr[data-seq="${seq}"]`);
  await row.waitFor();
  await row.locator("summary").click();
  check((await row.locator("pre").textContent()).includes(`"sequence": ${seq}`), "the entry can be inspected");
  await page.screenshot({ path: `${shots}/console-dlq.png` });
  await row.locator("button", { hasText: "Redeliver" }).click();
  await page.locator(`text=Redelivered entry ${seq}`).waitFor();
});
