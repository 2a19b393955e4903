// examples/web/react (built by vite into dist/, served by `roomcast serve
// --chat --static dist`) in headless Chromium: the useSocket hook pattern,
// unchanged socket.io-client code, against roomcast.
import { test } from "node:test";
import { REACT_DIST, launch, newPage, screenshot, serve } from "./harness.mjs";

async function enter(page, url, name) {
  await page.goto(url);
  await page.fill("#name", name);
  await page.click("button[type=submit]");
  await page.locator("#state[data-state=connected]").waitFor();
  await page.locator(`#members li[data-name="${name}"]`).waitFor();
}

test("the React example: join with an ack, presence, typing, messages", { timeout: 60_000 }, async (t) => {
  const server = await serve(t, ["--chat", "--static", REACT_DIST]);
  const browser = await launch(t);
  const [ada, bob] = [await newPage(t, browser), await newPage(t, browser)];
  await enter(ada, server.url, "Ada");
  await enter(bob, server.url, "Bob");
  await ada.locator('#members li[data-name="Bob"][data-status=online]').waitFor();
  await ada.locator("#messages li", { hasText: "Bob joined" }).waitFor();
  await bob.locator("#text").pressSequentially("hi");
  await ada.locator("#typing", { hasText: "Bob typing…" }).waitFor();
  await bob.press("#text", "Enter");
  for (const page of [ada, bob]) await page.locator("#messages li", { hasText: "Bob hi" }).waitFor();
  await bob.selectOption("select", "busy");
  await ada.locator('#members li[data-name="Bob"][data-status=busy]').waitFor();
  await screenshot(ada, "react-ada");
  await bob.close();
  await ada.locator('#members li[data-name="Bob"]').waitFor({ state: "detached" });
});
