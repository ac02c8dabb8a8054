// At phone width (390x844) every view fits the screen (tables scroll inside their box, the
// page itself never sideways). Screenshot: the endpoints at phone width.
// Usage: node phone.mjs <admin link> <subscription id> <screenshot dir>
import { run, check, baseOf } from "./lib.mjs";

const [link, sub, shots] = process.argv.slice(2);
await run(async (page) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(link);
  const base = baseOf(link);
  const views = [["#/overview", "#stat-dlq"], ["#/endpoints", "#endpoints table"], [`#/subscription/${sub}`, "#sub-state"],
    ["#/dlq", "#dlq"], ["#/live", "#tail"], ["#/event", "#timeline"], ["#/replay", "select[name=subscription_id]"]];
  for (const [hash, ready] of views) {
    await page.goto(`${base}/console${hash}`);
    await page.locator(ready).first().waitFor();
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (scroll > width) console.error("WIDE", await page.evaluate(() => [...document.querySelectorAll("main *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth).slice(0, 8).map((e) => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`).join(" | ")));
    check(scroll <= width, `${hash} fits the phone's width (${scroll} > ${width})`);
    if (hash === "#/endpoints") await page.screenshot({ path: `${shots}/console-phone.png` });
  }
});
