// A room's state as a reducer, so that it is tested without a browser.

export const initialChat = { joined: false, lines: [], members: {}, typing: {} };

/** How long a typing notice stays up (ms). */
export const TYPING_MS = 3000;

export function chatReducer(state, action) {
  switch (action.type) {
    case "joined":
      return { ...state, joined: true, members: Object.fromEntries(action.members.map((m) => [m.name, m.status])) };
    case "said": {
      const { name, text } = action.message;
      const { [name]: _, ...typing } = state.typing;
      return { ...state, lines: [...state.lines, { kind: "said", name, text }], typing };
    }
    case "notice":
      return { ...state, lines: [...state.lines, { kind: "notice", text: action.text }] };
    case "presence":
      return { ...state, members: { ...state.members, [action.member.userId]: action.member.meta?.status ?? "online" } };
    case "absent": {
      const { [action.name]: _, ...members } = state.members;
      return { ...state, members };
    }
    case "typing":
      return { ...state, typing: { ...state.typing, [action.name]: action.at + TYPING_MS } };
    default:
      return state;
  }
}

/** Who is typing at `now`, by name. */
export function typingNames(state, now) {
  return Object.entries(state.typing)
    .filter(([, until]) => until > now)
    .map(([name]) => name)
    .sort();
}
