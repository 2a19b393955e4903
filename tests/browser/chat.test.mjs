// The demo chat (examples/web/chat, served by `roomcast serve --chat`) in
// headless Chromium: what `make demo` and `make demo-cluster` show.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startRedis } from "../../node/test-fixtures/redis.mjs";
import { CHAT_DIR, enterChat, launch, lines, newPage, screenshot, serve } from "./harness.mjs";

const CHAT = ["--chat", "--static", CHAT_DIR, "--recovery-window-ms", "120000"];

test("two pages chat; presence, status and typing update", { timeout: 60_000 }, async (t) => {
  const server = await serve(t, CHAT);
  const browser = await launch(t);
  const [ada, bob] = [await newPage(t, browser), await newPage(t, browser)];
  await enterChat(ada, server.url, "Ada");
  await enterChat(bob, server.url, "Bob");
  // Presence: each page lists both, online.
  await ada.locator('#members li[data-name="Bob"][data-status=online]').waitFor();
  await bob.locator('#members li[data-name="Ada"][data-status=online]').waitFor();
  // Typing shows on the other page only.
  await bob.locator("#text").pressSequentially("hel");
  await ada.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
  assert.equal(await bob.locator("#typing").innerText(), "");
  await bob.locator("#text").pressSequentially("lo");
  await bob.press("#text", "Enter");
  for (const page of [ada, bob]) await page.locator("#messages li", { hasText: "Bobhello" }).waitFor();
  await ada.fill("#text", "hi Bob <b>not bold</b>");
  await ada.press("#text", "Enter");
  await bob.locator("#messages li", { hasText: "Adahi Bob <b>not bold</b>" }).waitFor();
  assert.equal(await bob.locator("#messages b").count(), 0, "text is shown as text, never as HTML");
  // Status: Bob goes away, Ada's list follows.
  await bob.selectOption("#status", "away");
  await ada.locator('#members li[data-name="Bob"][data-status=away]').waitFor();
  // A second room: only its members see what is said there.
  await bob.fill("#new-room", "games");
  await bob.press("#new-room", "Enter");
  await bob.locator("#room-title", { hasText: "#games" }).waitFor();
  await bob.fill("#text", "anyone?");
  await bob.press("#text", "Enter");
  await bob.locator("#messages li", { hasText: "Bobanyone?" }).waitFor();
  await screenshot(ada, "chat-ada");
  await screenshot(bob, "chat-bob");
  assert.ok(!(await lines(ada)).some((l) => l.includes("anyone?")), "Ada is not in #games");
  // Bob leaves the lobby: Ada sees it, and Bob leaves her members list.
  await bob.click('#rooms li[data-room="lobby"]');
  await bob.click("#leave");
  await ada.locator("#messages li", { hasText: "Bob left" }).waitFor();
  await ada.locator('#members li[data-name="Bob"]').waitFor({ state: "detached" });
});

test("two nodes on Redis: pages on each chat, and a page recovers what it missed while its node restarted", { timeout: 90_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const cluster = [...CHAT, "--redis", redis.url, "--node-ttl-ms", "2000"];
  let a = await serve(t, cluster);
  const b = await serve(t, cluster);
  const browser = await launch(t);
  const [ada, bob] = [await newPage(t, browser), await newPage(t, browser)];
  await enterChat(ada, a.url, "Ada");
  await enterChat(bob, b.url, "Bob");
  await ada.locator('#members li[data-name="Bob"]').waitFor();
  await bob.locator('#members li[data-name="Ada"]').waitFor();
  await bob.fill("#text", "from node b");
  await bob.press("#text", "Enter");
  await ada.locator("#messages li", { hasText: "Bobfrom node b" }).waitFor();
  await screenshot(ada, "cluster-ada-on-a");
  await screenshot(bob, "cluster-bob-on-b");

  // Node a restarts (SIGTERM, then a new process on the same port); Bob talks meanwhile.
  await a.stop();
  await ada.locator("#state[data-state=reconnecting]").waitFor();
  const missed = ["missed 1", "missed 2", "missed 3"];
  for (const text of missed) {
    await bob.fill("#text", text);
    await bob.press("#text", "Enter");
    await bob.locator("#messages li", { hasText: `Bob${text}` }).waitFor();
  }
  a = await serve(t, cluster, `127.0.0.1:${a.port}`);
  await ada.locator("#state[data-state=connected]").waitFor({ timeout: 30_000 });
  await ada.locator("#messages li.recovered").waitFor();
  await ada.locator("#messages li", { hasText: "Bobmissed 3" }).waitFor();
  const seen = await lines(ada);
  const after = seen.slice(seen.findIndex((l) => l.startsWith("Reconnected: session recovered")));
  assert.deepEqual(after.filter((l) => l.startsWith("Bobmissed")), missed.map((m) => `Bob${m}`), "missed messages in order, after the notice");
  assert.equal(seen.filter((l) => l === "Bobfrom node b").length, 1, "nothing seen twice");
  // And it goes on: a new message reaches the page on the restarted node.
  await bob.fill("#text", "welcome back");
  await bob.press("#text", "Enter");
  await ada.locator("#messages li", { hasText: "Bobwelcome back" }).waitFor();
  await screenshot(ada, "cluster-ada-recovered");
});
