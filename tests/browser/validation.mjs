// An endpoint is created with the CloudEvents validation handshake from the console's form; the
// endpoint refuses, and its view shows it inactive with the reason and the handshake's status.
// Usage: node validation.mjs <admin link> <endpoint url that refuses the handshake>
import { run, check, baseOf } from "./lib.mjs";

const [link, endpoint] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#nav").waitFor();
  await page.goto(`${baseOf(link)}/console#/endpoints`);
  const add = page.locator("form[aria-label='Add an endpoint']");
  await add.locator("input[name=url]").fill(endpoint);
  await add.locator("details.more summary").click();
  await add.locator("select[name=validation]").selectOption("cloudevents");
  await add.locator("button[type=submit]").click();
  await page.locator(`td.url >> text=${endpoint}`).waitFor();
  await page.locator(`a:text("${endpoint}")`).first().click();
  await page.locator("#sub-validation").waitFor();
  const state = await page.locator("#sub-state").textContent();
  check(state.startsWith("inactive (handshake refused: ") && state.includes("405"), `the reason is shown: ${state}`);
  const validation = await page.locator("#sub-validation").textContent();
  check(validation === "cloudevents handshake refused", `the status is shown: ${validation}`);
});
