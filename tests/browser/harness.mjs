// What the browser suites share: Debian's Chromium driven by playwright-core,
// `roomcast serve` processes on free ports, and screenshots as artifacts.
//   ROOMCAST_BIN        the roomcast binary (make test-browser passes it)
//   ROOMCAST_CHROMIUM   the browser (default: Debian's /usr/bin/chromium)
//   ROOMCAST_ARTIFACTS  where screenshots go
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CHAT_DIR = path.join(ROOT, "examples/web/chat");
export const REACT_DIST = path.join(ROOT, "examples/web/react/dist");
const BIN = process.env.ROOMCAST_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "debug/roomcast");
const CHROMIUM = process.env.ROOMCAST_CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = process.env.ROOMCAST_ARTIFACTS ?? path.join(ROOT, "target-artifacts/browser");
/** Flags for a root user on a machine without network access beyond localhost. */
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync",
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A headless Chromium, closed after `t`. */
export async function launch(t) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}

/** A page of its own (a separate browser context: its own cookies and storage) whose console errors fail `t`. */
export async function newPage(t, browser) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  t.after(() => {
    if (errors.length) throw new Error(`errors in the page: ${errors.join("; ")}`);
  });
  return page;
}

/** Save a screenshot of `page` as `<test>-<name>.png` in the artifacts directory. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * `roomcast serve` with `args` on `listen` (default a free port): `{url, port, stop, kill}`,
 * up once it printed its address. `stop` sends SIGTERM and waits for the exit.
 */
export async function serve(t, args, listen = "127.0.0.1:0") {
  const child = spawn(BIN, ["serve", "--listen", listen, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
  });
  let out = "";
  const onData = (d) => (out += d);
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = once(child, "exit");
  t.after(() => child.kill("SIGKILL"));
  const deadline = Date.now() + 15_000;
  let m;
  while (!(m = out.match(/serving http:\/\/127\.0\.0\.1:(\d+)\//))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`roomcast serve did not start (${BIN} ${args.join(" ")}): ${out}`);
    }
    await sleep(50);
  }
  const port = Number(m[1]);
  const end = async (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { port, url: `http://127.0.0.1:${port}`, stop: () => end("SIGTERM"), kill: () => end("SIGKILL"), log: () => out };
}

/** Log in on the demo chat at `url` as `name`, into `room`; resolves once the room is joined. */
export async function enterChat(page, url, name, room = "lobby") {
  await page.goto(url);
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.click("#login button[type=submit]");
  await page.locator("#state[data-state=connected]").waitFor();
  await page.locator(`#members li[data-name="${name}"]`).waitFor();
}

/** The texts of the message lines on screen. */
export const lines = (page) => page.locator("#messages li").allInnerTexts();
