// The console works from the keyboard alone: the skip link comes first, the nav leads to the
// endpoints, a subscription opens with Enter, and a destructive action asks first.
// Usage: node keyboard.mjs <admin link> <subscription id>
import { run, check } from "./lib.mjs";

const [link, sub] = process.argv.slice(2);

// Presses Tab until `pred(activeElement)` holds (at most 60 times).
async function tabTo(page, what, pred) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(pred)) return;
  }
  throw new Error(`Tab never reached ${what}`);
}

await run(async (page) => {
  let asked = null;
  page.removeAllListeners("dialog");
  page.on("dialog", (d) => { asked = d.message(); d.accept(); });
  await page.goto(link);
  await page.locator("#stat-dlq").waitFor();
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.textContent) === "Skip to content", "the skip link comes first");
  await tabTo(page, "the Endpoints link", () => document.activeElement.textContent === "Endpoints");
  await page.keyboard.press("Enter");
  await page.locator(`a[href="#/subscription/${sub}"]`).waitFor();
  await tabTo(page, "the subscription's link", `document.activeElement.getAttribute("href") === "#/subscription/${sub}"`);
  await page.keyboard.press("Enter");
  await page.locator("#sub-state", { hasText: "active" }).waitFor();
  await tabTo(page, "the Deactivate button", () => document.activeElement.textContent === "Deactivate");
  await page.keyboard.press("Enter");
  await page.locator("#sub-state", { hasText: "inactive" }).waitFor();
  check(asked && asked.includes("Deactivate"), `a confirmation was asked: ${asked}`);
});
