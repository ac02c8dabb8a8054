// Shared by the console's browser scenarios: starts Debian's chromium through playwright-core
// (never a downloaded browser) with a fresh profile, and fails the scenario with a message.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const executablePath = process.env.HOOKLINE_CHROMIUM || "/usr/bin/chromium";

/** Runs `scenario(page)` in a fresh 1280x800 page; exit 0 and "ok" on success, 1 otherwise. */
export async function run(scenario) {
  const profile = mkdtempSync(join(tmpdir(), "hookline-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20000);
    page.on("dialog", (d) => d.accept());
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await scenario(page);
    console.log("ok");
  } catch (e) {
    console.error(`scenario failed: ${e.stack || e}`);
    process.exitCode = 1;
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Fails unless `cond` holds. */
export function check(cond, what) {
  if (!cond) throw new Error(what);
}

/** The console's base URL (`http://host:port`) of a link. */
export const baseOf = (link) => new URL(link).origin;
