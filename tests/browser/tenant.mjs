// A tenant link lists only that tenant's endpoints, the API refuses another tenant's id, and
// the tenant edits, then deletes its endpoint (after a confirmation).
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
  let confirmed = "";
  page.on("dialog", (d) => { confirmed = d.message(); });
  await page.click(`td.url >> text=${own}`);
  await page.click("summary >> text=Edit");
  await page.fill("input[name=description]", "edited by the tenant");
  await page.click("button >> text=Save");
  await page.locator("h1 >> text=edited by the tenant").waitFor();
  await page.click("#delete");
  await page.locator("text=deleted.").waitFor();
  check(confirmed.startsWith("Delete the endpoint"), `the delete was confirmed first (${confirmed})`);
  await page.locator(".empty").waitFor();
});
