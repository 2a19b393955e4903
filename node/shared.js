"use strict";
// What the server and client facades share: ack callbacks and reporting.

/** The longest timer Node allows (~24.8 days): "no timeout" for an ack. */
const FOREVER = 2 ** 31 - 1;

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

module.exports = { FOREVER, takeAck, timeoutError, withAck, report, fire, anyListeners };
