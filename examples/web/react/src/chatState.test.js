import { describe, expect, it } from "vitest";
import { TYPING_MS, chatReducer, initialChat, typingNames } from "./chatState.js";

const run = (...actions) => actions.reduce(chatReducer, initialChat);
const member = (userId, status) => ({ room: "lobby", userId, meta: { status } });

describe("chatReducer", () => {
  it("takes the members the join's who answered, then follows presence", () => {
    const joined = { type: "joined", members: [{ name: "Ada", status: "online" }] };
    const s = run(joined, { type: "presence", member: member("Bob", "online") }, { type: "presence", member: member("Bob", "away") });
    expect(s.joined).toBe(true);
    expect(s.members).toEqual({ Ada: "online", Bob: "away" });
    expect(chatReducer(s, { type: "absent", name: "Bob" }).members).toEqual({ Ada: "online" });
  });

  it("keeps messages in arrival order, and a message ends its sender's typing", () => {
    const s = run(
      { type: "typing", name: "Bob", at: 1000 },
      { type: "said", message: { room: "lobby", name: "Ada", text: "hi" } },
      { type: "said", message: { room: "lobby", name: "Bob", text: "hello" } },
    );
    expect(s.lines.map((l) => l.text)).toEqual(["hi", "hello"]);
    expect(typingNames(s, 1001)).toEqual([]);
  });

  it("shows a typing notice for a while", () => {
    const s = run({ type: "typing", name: "Bob", at: 1000 }, { type: "typing", name: "Cy", at: 2000 });
    expect(typingNames(s, 1500)).toEqual(["Bob", "Cy"]);
    expect(typingNames(s, 1000 + TYPING_MS)).toEqual(["Cy"]);
  });
});
