// The chat-with-presence examples' behaviour (examples/rust/chat.rs,
// examples/node/chat.mjs; examples/python/chat.py is driven the same way by
// python/tests/test_examples.py), driven by real socket.io-clients: `io` is
// socket.io-client's, from whichever package runs it.
import assert from "node:assert/strict";
import { once } from "node:events";

/** Two clients chat in a room with presence on the example at `url`; both are closed by `t`. */
export async function chatScenario(t, url, io) {
  const connect = (auth) => io(url, { transports: ["websocket"], reconnection: false, auth });
  const nameless = connect({});
  assert.equal((await once(nameless, "connect_error"))[0].message, "pick a name first");
  nameless.close();
  const [ada, bob] = [connect({ name: "Ada" }), connect({ name: "Bob" })];
  t.after(() => (ada.close(), bob.close()));
  await Promise.all([once(ada, "connect"), once(bob, "connect")]);
  assert.deepEqual(await ada.emitWithAck("join", { room: "rust" }), { ok: true, rooms: ["rust"] });
  const [joined, present] = [once(ada, "joined"), once(ada, "presence:join")];
  await bob.emitWithAck("join", { room: "rust" });
  assert.deepEqual((await joined)[0], { room: "rust", name: "Bob" });
  assert.equal((await present)[0].userId, "Bob");
  const online = (name) => ({ name, status: "online" });
  assert.deepEqual(await ada.emitWithAck("who", { room: "rust" }), [online("Ada"), online("Bob")]);
  const typing = once(ada, "typing");
  bob.emit("typing", { room: "rust" });
  assert.deepEqual((await typing)[0], { room: "rust", name: "Bob" });
  const away = once(ada, "presence:update");
  assert.equal(await bob.emitWithAck("status", { status: "away" }), true);
  const [update] = await away;
  assert.deepEqual([update.userId, update.meta], ["Bob", { status: "away" }]);
  assert.equal(await bob.emitWithAck("status", { status: "asleep" }), false);
  const bobAway = { name: "Bob", status: "away" };
  assert.deepEqual(await ada.emitWithAck("who", { room: "rust" }), [online("Ada"), bobAway]);
  const said = Promise.all([once(ada, "said"), once(bob, "said")]);
  assert.equal(await bob.emitWithAck("say", { room: "rust", text: "hi" }), true);
  const message = { room: "rust", name: "Bob", text: "hi" };
  assert.deepEqual((await said).map(([m]) => m), [message, message]);
  assert.equal(await ada.emitWithAck("say", { room: "elsewhere", text: "x" }), false);
  const [left, absent] = [once(ada, "left"), once(ada, "presence:leave")];
  bob.emit("leave", { room: "rust" });
  assert.deepEqual((await left)[0], { room: "rust", name: "Bob" });
  assert.equal((await absent)[0].userId, "Bob");
  return { ada, bob };
}
