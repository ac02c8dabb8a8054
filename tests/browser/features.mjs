// A subscription's payload filter, own retry schedule and custom headers are set from the
// console's edit form; a bad filter is refused with the API's message naming it.
// An endpoint created with an Ed25519 key shows its public key (never a secret), and its view
// names the v1a scheme.
// Usage: node features.mjs <link> <subscription id> <url for a new endpoint>
import { run, check, baseOf } from "./lib.mjs";

const [link, sub, newUrl] = process.argv.slice(2);
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

  check(await page.locator("#sub-signature").textContent() === "HMAC-SHA256 (v1)", "the hmac scheme is shown");

  await page.goto(`${baseOf(link)}/console#/endpoints`);
  const add = page.locator("form[aria-label='Add an endpoint']");
  await add.locator("input[name=url]").fill(newUrl);
  await add.locator("select[name=key_type]").selectOption("ed25519");
  await add.locator("select[name=body_format]").selectOption("cloudevents_binary");
  await add.locator("button[type=submit]").click();
  const key = (await page.locator("#public-key").textContent()).trim();
  check(key.startsWith("whpk_"), `the public key is shown once created: ${key}`);
  check((await page.locator("#secret").count()) === 0, "no secret is shown for an ed25519 endpoint");
  await page.locator(`a:text("${newUrl}")`).first().click();
  await page.locator("#sub-signature", { hasText: "Ed25519 (v1a)" }).waitFor();
  check((await page.locator("#sub-public-key").textContent()) === key, "the view shows the same public key");
  check((await page.locator("#sub-body-format").textContent()) === "CloudEvent (binary)", "the chosen body format is shown");
});
