"use strict";
// What the server and client facades share: ack callbacks and reporting.

/** The longest timer Node allows (~24.8 days): "no timeout" for an ack. */
const FOREVER = 2 ** 31 - 1;

/** Events a socket reserves for itself; apps may not emit them. */
const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

function checkEvent(event) {
  if (RESERVED.has(event)) throw new Error(`"${event}" is a reserved event name`);
}

/** Remove and return a trailing ack callback from `args`. */
function takeAck(args) {
  return typeof args[args.length - 1] === "function" ? args.pop() : undefined;
}

function timeoutError() {
  return Object.assign(new Error("operation has timed out"), { code: "ERR_TIMEOUT" });
}

/** Deliver an ack to `callback`, as socket.io does: `(err, ...args)` when
 *  a timeout was set, else `(...args)` (and nothing if it never comes). */
function withAck(reply, callback, withErr) {
  reply.then(
    (args) => (withErr ? callback(null, ...args) : callback(...args)),
    (err) => withErr && callback(err),
  );
}

/** Run an app listener; a throw is reported and the connection goes on. */
function report(run, id, event) {
  try {
    const result = run();
    if (result && typeof result.catch === "function") {
      result.catch((err) => console.error(`roomcast: the ${event} handler of ${id} failed:`, err));
    }
  } catch (err) {
    console.error(`roomcast: the ${event} handler of ${id} failed:`, err);
  }
}

/** Call `emitter`'s listeners of `event` (sync or async), each reported on its own. */
function fire(emitter, event, args, id) {
  for (const listener of emitter.rawListeners(event)) report(() => listener.apply(emitter, args), id, event);
}

/** socket.io's catch-all listener methods, for a class keeping them in `_any`. */
const anyListeners = {
  onAny(listener) {
    this._any.push(listener);
    return this;
  },
  prependAny(listener) {
    this._any.unshift(listener);
    return this;
  },
  offAny(listener) {
    this._any = listener ? this._any.filter((l) => l !== listener) : [];
    return this;
  },
  listenersAny() {
    return [...this._any];
  },
};

/** socket.io's ways to emit to one peer, acks included, for a socket class
 *  with `_emit(event, args)`, `_ask(event, args, ms)` (resolving to the
 *  ack's arguments), `_ackTimeout` (ms or undefined) and `_sent()` (what
 *  its emit returns). */
const emitting = {
  /** Send `event`; a function last receives its ack. */
  emit(event, ...args) {
    checkEvent(event);
    return this._emitWithin(event, args, this._ackTimeout);
  },

  _emitWithin(event, args, timeout) {
    const ack = takeAck(args);
    if (ack) withAck(this._ask(event, args, timeout ?? FOREVER), ack, timeout !== undefined);
    else this._emit(event, args);
    return this._sent();
  },

  /** Resolves to the peer's ack (its first argument). */
  async emitWithAck(event, ...args) {
    return (await this._ask(event, args, this._ackTimeout ?? FOREVER))[0];
  },

  /** `socket.timeout(ms).emit(ev, ..., (err, ...ack) => ...)` and `.emitWithAck`. */
  timeout(ms) {
    return {
      emit: (event, ...args) => this._emitWithin(event, args, ms),
      emitWithAck: async (event, ...args) => (await this._ask(event, args, ms))[0],
    };
  },

  send(...args) {
    return this.emit("message", ...args);
  },
};

module.exports = { takeAck, timeoutError, report, fire, anyListeners, emitting, checkEvent, FOREVER };
