// The common React pattern for socket.io-client: the socket lives in a
// useEffect (made on mount, closed on unmount or when its inputs change), its
// state flows into React state, and commands are acked emits. Nothing here is
// roomcast-specific: it is what a socket.io app does, against roomcast.
import { useCallback, useEffect, useReducer, useState } from "react";
import { io } from "socket.io-client";
import { chatReducer, initialChat } from "./chatState.js";

const ACK_TIMEOUT = 5000;

/** A socket connected as `name` (none while `name` is empty): `{socket, connected, recovered, error}`. */
export function useSocket(name, url = undefined) {
  const [socket, setSocket] = useState(null);
  const [state, setState] = useState({ connected: false, recovered: false, error: null });
  useEffect(() => {
    if (!name) return undefined;
    const s = io(url, { auth: { name } });
    setSocket(s);
    const onConnect = () => setState({ connected: true, recovered: s.recovered, error: null });
    const onDisconnect = () => setState((st) => ({ ...st, connected: false }));
    const onError = (err) => setState((st) => ({ ...st, connected: false, error: err.message }));
    s.on("connect", onConnect);
    s.on("disconnect", onDisconnect);
    s.on("connect_error", onError);
    return () => {
      s.off("connect", onConnect);
      s.off("disconnect", onDisconnect);
      s.off("connect_error", onError);
      s.disconnect();
      setSocket(null);
    };
  }, [name, url]);
  return { socket, ...state };
}

/** One room on `socket`: joined with an ack, its messages, presence and typing. */
export function useRoom(socket, connected, room) {
  const [chat, dispatch] = useReducer(chatReducer, initialChat);
  useEffect(() => {
    if (!socket) return undefined;
    const handlers = {
      said: (m) => m.room === room && dispatch({ type: "said", message: m }),
      joined: (m) => m.room === room && dispatch({ type: "notice", text: `${m.name} joined` }),
      left: (m) => m.room === room && dispatch({ type: "notice", text: `${m.name} left` }),
      typing: (m) => m.room === room && dispatch({ type: "typing", name: m.name, at: Date.now() }),
      "presence:join": (m) => m.room === room && dispatch({ type: "presence", member: m }),
      "presence:update": (m) => m.room === room && dispatch({ type: "presence", member: m }),
      "presence:leave": (m) => m.room === room && dispatch({ type: "absent", name: m.userId }),
    };
    for (const [event, fn] of Object.entries(handlers)) socket.on(event, fn);
    return () => {
      for (const [event, fn] of Object.entries(handlers)) socket.off(event, fn);
    };
  }, [socket, room]);
  // Join (again) on every connection that did not recover its rooms.
  useEffect(() => {
    if (!socket || !connected) return;
    let live = true;
    const joinRoom = async () => {
      if (!socket.recovered) {
        const reply = await socket.timeout(ACK_TIMEOUT).emitWithAck("join", { room });
        if (!reply.ok) throw new Error(`could not join ${room}`);
      }
      const members = await socket.timeout(ACK_TIMEOUT).emitWithAck("who", { room });
      if (live) dispatch({ type: "joined", members });
    };
    joinRoom().catch((err) => live && dispatch({ type: "notice", text: err.message }));
    return () => {
      live = false;
    };
  }, [socket, connected, room]);
  const say = useCallback(
    (text) => socket?.timeout(ACK_TIMEOUT).emitWithAck("say", { room, text }),
    [socket, room],
  );
  const sendTyping = useCallback(() => socket?.volatile.emit("typing", { room }), [socket, room]);
  const setStatus = useCallback((status) => socket?.emit("status", { status }), [socket]);
  return { ...chat, say, sendTyping, setStatus };
}
