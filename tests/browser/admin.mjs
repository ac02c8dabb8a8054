// An admin link opens the operator console (overview), and an endpoint created in the console
// appears in the list with its secret shown once. Screenshot: the endpoints.
// Usage: node admin.mjs <admin link> <endpoint url to create> <screenshot dir>
import { run, check } from "./lib.mjs";

const [link, endpoint, shots] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator("#stat-dlq").waitFor();
  check(!page.url().includes("#t="), "the token is removed from the address bar");
  check(await page.locator("#scope").textContent() === "operator console", "admin scope shown");
  await page.click("text=Endpoints");
  await page.fill("input[name=url]", endpoint);
  await page.fill("input[name=event_types]", "order.*");
  await page.fill("input[name=description]", "created in the console");
  await page.click("button[type=submit]");
  await page.locator("#secret").waitFor();
  check((await page.locator("#secret").textContent()).startsWith("whsec_"), "the new secret is shown");
  await page.locator(`td.url >> text=${endpoint}`).waitFor();
  await page.screenshot({ path: `${shots}/console-endpoints.png` });
});
