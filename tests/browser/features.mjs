// A subscription's payload filter, own retry schedule and custom headers are set from the
// console's edit form; a bad filter is refused with the API's message naming it.
// Usage: node features.mjs <link> <subscription id>
import { run, check, baseOf } from "./lib.mjs";

const [link, sub] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/subscription/${sub}`);
  await page.locator("#sub-schedule", { hasText: "the global one" }).waitFor();
  const edit = page.locator("form[aria-label='Edit the endpoint']");
  await page.click("summary:text('Edit')");
  await edit.locator("summary").click();
  await edit.locator("textarea[name=filter]").fill('{"amount": {"$wat": 1}}');
  await edit.locator("button[type=submit]").click();
  const refused = await page.locator("[role=alert]").textContent();
  check(refused.includes("filter") && refused.includes("$wat"), `the bad filter is refused: ${refused}`);
  await edit.locator("textarea[name=filter]").fill('{"amount": {"$gt": 100}}');
  await edit.locator("input[name=retry_schedule]").fill("0s, 5s");
  await edit.locator("textarea[name=headers]").fill('{"X-Api-Key": "k1"}');
  await edit.locator("button[type=submit]").click();
  await page.locator("text=Endpoint saved.").waitFor();
  check(await page.locator("#sub-filter").textContent() === '{"amount":{"$gt":100}}', "the filter is shown");
  check(await page.locator("#sub-schedule").textContent() === "0s, 5s", "the schedule is shown");
  check((await page.locator("text=X-Api-Key (values hidden)").count()) === 1, "the header's name is shown, not its value");
});
