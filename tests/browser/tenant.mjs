// A tenant link lists only that tenant's endpoints, and the API refuses another tenant's id.
// Usage: node tenant.mjs <tenant link> <own endpoint url> <other tenant's endpoint url> <other id>
import { run, check } from "./lib.mjs";

const [link, own, other, otherId] = process.argv.slice(2);
await run(async (page) => {
  await page.goto(link);
  await page.locator(`td.url >> text=${own}`).waitFor();
  check(await page.locator("#scope").textContent() === "endpoint portal", "tenant scope shown");
  check(!(await page.locator("[data-admin]").isVisible()), "no operator overview for a tenant");
  check(!(await page.content()).includes(other), "another tenant's endpoint is not listed");
  const status = await page.evaluate(async (id) => {
    const token = sessionStorage.getItem("hookline.token");
    const r = await fetch(`/v1/subscriptions/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return r.status;
  }, otherId);
  check(status === 404, `the API answers ${status} for another tenant's id, not 404`);
});
