"use strict";
// socket.io-client's `io()` and `Socket` over roomcast's native client
// (WebSocket transport, reconnection with socket.io-client's backoff, emits
// buffered while disconnected).

const { EventEmitter } = require("node:events");
const { NativeClient } = require("./native.js");
const { report, fire, anyListeners, emitting, FOREVER } = require("./shared.js");

/** A client socket of one namespace, as socket.io-client's `Socket`. */
class Socket extends EventEmitter {
  constructor(url, opts = {}) {
    super();
    const transports = opts.transports ?? ["websocket"];
    if (!transports.includes("websocket")) {
      throw Object.assign(new Error("roomcast's client speaks the websocket transport only"), {
        code: "ERR_INVALID_ARGUMENT",
      });
    }
    this.auth = opts.auth;
    this._opts = opts;
    this._url = url;
    this._native = undefined;
    this._any = [];
    this.id = undefined;
    this.connected = false;
    this.recovered = false;
    if (opts.autoConnect !== false) this.connect();
  }

  get disconnected() {
    return !this.connected;
  }

  /** Whether it is connected or trying to be (not given up, not closed). */
  get active() {
    return this._native !== undefined && this._native.active;
  }

  _client() {
    const opts = this._opts;
    const native = new NativeClient(this._url, {
      path: opts.path,
      auth: typeof this.auth === "function" ? undefined : this.auth,
      query: opts.query,
      extraHeaders: opts.extraHeaders,
      reconnection: opts.reconnection,
      reconnectionAttempts: Number.isFinite(opts.reconnectionAttempts) ? opts.reconnectionAttempts : undefined,
      reconnectionDelay: opts.reconnectionDelay,
      reconnectionDelayMax: opts.reconnectionDelayMax,
      randomizationFactor: opts.randomizationFactor,
      timeout: opts.timeout,
      retries: opts.retries,
      ackTimeout: opts.retries > 0 ? opts.ackTimeout : undefined,
    });
    native.onEvent((event, args, wantsAck) => this._dispatch(event, args, wantsAck));
    native.onLifecycle((kind, detail) => this._lifecycle(kind, detail));
    return native;
  }

  /** Connect (done by `io()` unless `autoConnect: false`). */
  connect() {
    if (this._native?.active) return this;
    if (typeof this.auth === "function") {
      this.auth((auth) => {
        this.auth = auth;
        this._open();
      });
    } else {
      this._open();
    }
    return this;
  }

  open() {
    return this.connect();
  }

  _open() {
    this._native = this._client();
    // Failures reach the app as `connect_error`.
    this._native.open().catch(() => {});
  }

  _lifecycle(kind, detail) {
    if (kind === "connect") {
      this.id = detail;
      this.connected = true;
      this.recovered = this._native.recovered;
      fire(this, "connect", [], this.id);
    } else if (kind === "disconnect") {
      this.connected = false;
      this.id = undefined;
      fire(this, "disconnect", [detail, undefined], this.id);
    } else if (kind === "connect_error") {
      const err = Object.assign(new Error(detail.message), { data: detail.data ?? undefined });
      fire(this, "connect_error", [err], this.id);
    }
  }

  _dispatch(event, args, wantsAck) {
    // Unhandled: socket.io-client leaves its ack unanswered.
    if (this.listenerCount(event) === 0 && this._any.length === 0) return Promise.resolve(false);
    const acked = wantsAck
      ? new Promise((resolve) => {
          args.push((...reply) => resolve(reply));
        })
      : undefined;
    for (const any of this._any) report(() => any(event, ...args), this.id, event);
    fire(this, event, args, this.id);
    return acked ?? Promise.resolve(undefined);
  }

  /** The native client, made on first use (emits before connect() are then refused). */
  _connection() {
    if (!this._native) this._native = this._client();
    return this._native;
  }

  _emit(event, args) {
    this._connection().emit(event, args);
  }

  _ask(event, args, ms) {
    return this._connection().emitWithAck(event, args, ms);
  }

  _sent() {
    return this;
  }

  get _ackTimeout() {
    // With retries, each try waits ackTimeout (in the core) and the wait as
    // a whole is bounded by the tries; acks are error-first, as socket.io-client's.
    return this._opts.retries > 0 ? FOREVER : this._opts.ackTimeout;
  }

  /** Leave the namespace and close; no reconnection. Resolves once closed. */
  disconnect() {
    const native = this._native;
    if (native) this._closing = native.close();
    return this;
  }

  close() {
    return this.disconnect();
  }
}

Object.assign(Socket.prototype, anyListeners, emitting);

/** `io(url, opts)`: a socket of the namespace named by the URL's path. */
function io(url, opts) {
  return new Socket(url, opts);
}

module.exports = { io, connect: io, Socket };
