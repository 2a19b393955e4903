"use strict";
// The socket.io-shaped server API over the native addon. Protocol work,
// rooms, broadcasts and acks run in Rust; this file only keeps the JS
// objects (sockets, namespaces) that socket.io apps hold and maps calls.

const { EventEmitter } = require("node:events");
const { NativeServer } = require("./native.js");
const { takeAck, timeoutError, report, fire, anyListeners, emitting, checkEvent } = require("./shared.js");

function list(rooms) {
  if (rooms === undefined) return [];
  return Array.isArray(rooms) || rooms instanceof Set ? [...rooms].map(String) : [String(rooms)];
}

/** Selected sockets of a namespace: `to` / `in` / `except`, as socket.io's. */
class BroadcastOperator {
  constructor(nsp, rooms = [], except = [], flags = {}) {
    this.nsp = nsp;
    this.rooms = rooms;
    this.exceptRooms = except;
    this.flags = flags;
  }

  to(room) {
    return new BroadcastOperator(this.nsp, [...this.rooms, ...list(room)], this.exceptRooms, this.flags);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return new BroadcastOperator(this.nsp, this.rooms, [...this.exceptRooms, ...list(room)], this.flags);
  }

  /** Dropped for sockets whose outgoing queue is full, rather than queued. */
  get volatile() {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, volatile: true });
  }

  /** Acks are awaited `ms` milliseconds. */
  timeout(ms) {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, timeout: ms });
  }

  get local() {
    return this;
  }

  /** Send to every selected socket; a function last gets `(err, responses)` (needs `timeout`). */
  emit(event, ...args) {
    checkEvent(event);
    const ack = takeAck(args);
    if (ack) {
      this.emitWithAck(event, ...args).then(
        (responses) => ack(null, responses),
        (err) => ack(err, err.responses ?? []),
      );
      return true;
    }
    const { native, name } = this.nsp;
    native.broadcast(name, this.rooms, this.exceptRooms, !!this.flags.volatile, event, args);
    return true;
  }

  /** Resolves to each socket's ack (its first argument) or rejects with
   *  `ERR_TIMEOUT` (and the responses that came) when some did not answer. */
  async emitWithAck(event, ...args) {
    if (this.flags.timeout === undefined) {
      throw new Error("broadcast acks need a timeout: io.timeout(ms).emitWithAck(...)");
    }
    const { native, name } = this.nsp;
    const replies = await native.broadcastWithAck(name, this.rooms, this.exceptRooms, event, args, this.flags.timeout);
    const responses = replies.filter((r) => r.args).map((r) => r.args[0]);
    if (responses.length < replies.length) {
      throw Object.assign(timeoutError(), { responses });
    }
    return responses;
  }

  /** The selected sockets (this process's). */
  async fetchSockets() {
    const { native, name, sockets } = this.nsp;
    return native
      .socketIds(name, this.rooms, this.exceptRooms)
      .map((id) => sockets.get(id))
      .filter(Boolean);
  }

  socketsJoin(room) {
    for (const r of list(room)) this.nsp.native.socketsRoom(this.nsp.name, this.rooms, this.exceptRooms, r, true);
  }

  socketsLeave(room) {
    for (const r of list(room)) this.nsp.native.socketsRoom(this.nsp.name, this.rooms, this.exceptRooms, r, false);
  }

  disconnectSockets(close = false) {
    this.nsp.native.disconnectSockets(this.nsp.name, this.rooms, this.exceptRooms, !!close);
  }
}

/** One client's connection to a namespace, as socket.io's server-side Socket. */
class Socket extends EventEmitter {
  constructor(nsp, id, handshake) {
    super();
    this.nsp = nsp;
    this.id = id;
    this.handshake = handshake;
    this.data = {};
    this.connected = false;
    this._any = [];
    this._pendingAcks = new Set();
  }

  get server() {
    return this.nsp.server;
  }

  get disconnected() {
    return !this.connected;
  }

  /** The rooms the socket is in, its own (its id) first. */
  get rooms() {
    return new Set(this.nsp.native.rooms(this.nsp.name, this.id));
  }

  _emit(event, args) {
    this.nsp.native.emit(this.nsp.name, this.id, event, args);
  }

  _ask(event, args, ms) {
    return this.nsp.native.emitWithAck(this.nsp.name, this.id, event, args, ms);
  }

  _sent() {
    return true;
  }

  write(...args) {
    return this.send(...args);
  }

  join(rooms) {
    this.nsp.native.join(this.nsp.name, this.id, list(rooms));
  }

  leave(room) {
    this.nsp.native.leave(this.nsp.name, this.id, String(room));
  }

  /** Everyone selected but this socket. */
  to(room) {
    return this.broadcast.to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return this.broadcast.except(room);
  }

  get broadcast() {
    return new BroadcastOperator(this.nsp, [], [this.id]);
  }

  /** Sent only if its outgoing queue has room. */
  get volatile() {
    return new BroadcastOperator(this.nsp, [this.id], [], { volatile: true });
  }

  /** Leave the namespace; with `close`, every namespace of the connection, and close it. */
  disconnect(close = false) {
    this.nsp.native.disconnect(this.nsp.name, this.id, !!close);
    return this;
  }

  /** An event from the client: catch-all listeners, then the event's own.
   *  With an ack wanted, the promise settles with the ack's arguments. */
  _dispatch(event, args, wantsAck) {
    let settle;
    const acked = wantsAck
      ? new Promise((resolve) => {
          settle = resolve;
          this._pendingAcks.add(resolve);
          args.push((...reply) => {
            this._pendingAcks.delete(resolve);
            resolve(reply);
          });
        })
      : undefined;
    if (this.listenerCount(event) === 0 && this._any.length === 0) {
      // Unhandled: socket.io leaves its ack unanswered.
      this._pendingAcks.delete(settle);
      return Promise.resolve(false);
    }
    for (const any of this._any) report(() => any(event, ...args), this.id, event);
    fire(this, event, args, this.id);
    return acked ?? Promise.resolve(undefined);
  }

  _closed(reason) {
    this.connected = false;
    for (const settle of this._pendingAcks) settle(undefined);
    this._pendingAcks.clear();
    fire(this, "disconnecting", [reason], this.id);
    fire(this, "disconnect", [reason], this.id);
  }
}

Object.assign(Socket.prototype, anyListeners, emitting);

/** Run socket.io middlewares `(socket, next)` in order; `next(err)` refuses. */
async function admit(middlewares, socket) {
  for (const fn of middlewares) {
    await new Promise((resolve, reject) => {
      try {
        fn(socket, (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err);
      }
    });
  }
}

/** A namespace, as socket.io's: middlewares, `connection`, broadcasts. */
class Namespace extends EventEmitter {
  constructor(server, name) {
    super();
    this.server = server;
    this.name = name;
    this.native = server._native;
    /** Connected sockets by id. */
    this.sockets = new Map();
    this._middlewares = [];
    this.native.onConnect(name, async (sid, handshake) => {
      const socket = new Socket(this, sid, handshake);
      try {
        await admit(this._middlewares, socket);
      } catch (err) {
        return { message: String(err?.message ?? err), data: err?.data ?? null };
      }
      socket.connected = true;
      this.sockets.set(sid, socket);
      fire(this, "connection", [socket], sid);
      fire(this, "connect", [socket], sid);
      return null;
    });
    this.native.onEvent(name, (sid, event, args, wantsAck) => {
      const socket = this.sockets.get(sid);
      return socket ? socket._dispatch(event, args, wantsAck) : Promise.resolve(undefined);
    });
    this.native.onDisconnect(name, (sid, reason) => {
      const socket = this.sockets.get(sid);
      if (!socket) return;
      socket._closed(reason);
      this.sockets.delete(sid);
    });
  }

  use(fn) {
    this._middlewares.push(fn);
    return this;
  }

  _all() {
    return new BroadcastOperator(this);
  }

  to(room) {
    return this._all().to(room);
  }

  in(room) {
    return this.to(room);
  }

  except(room) {
    return this._all().except(room);
  }

  get volatile() {
    return this._all().volatile;
  }

  get local() {
    return this._all();
  }

  timeout(ms) {
    return this._all().timeout(ms);
  }

  emit(event, ...args) {
    return this._all().emit(event, ...args);
  }

  emitWithAck(event, ...args) {
    return this._all().emitWithAck(event, ...args);
  }

  send(...args) {
    return this.emit("message", ...args);
  }

  write(...args) {
    return this.send(...args);
  }

  fetchSockets() {
    return this._all().fetchSockets();
  }

  socketsJoin(room) {
    return this._all().socketsJoin(room);
  }

  socketsLeave(room) {
    return this._all().socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return this._all().disconnectSockets(close);
  }
}

function origins(cors) {
  const origin = cors?.origin;
  if (origin === undefined || origin === true || origin === "*") return undefined;
  return list(origin);
}

/** A socket.io-compatible server (Socket.IO at `path`, JSON protocol at `/ws`). */
class Server extends EventEmitter {
  /** `new Server(opts)`, or `new Server(port, opts)` to listen at once. */
  constructor(portOrOptions, maybeOptions) {
    super();
    const port = typeof portOrOptions === "number" ? portOrOptions : undefined;
    const opts = (port === undefined ? portOrOptions : maybeOptions) ?? {};
    this._native = new NativeServer({
      pingInterval: opts.pingInterval,
      pingTimeout: opts.pingTimeout,
      connectTimeout: opts.connectTimeout,
      maxHttpBufferSize: opts.maxHttpBufferSize,
      path: opts.path,
      corsOrigins: origins(opts.cors),
    });
    this._nsps = new Map();
    this.sockets = this.of("/");
    this.port = undefined;
    if (port !== undefined) this.listen(port).catch((err) => this.emit("error", err));
  }

  /** Listen on `port` (0 picks one) and `host` (127.0.0.1 by default); resolves to the port. */
  async listen(port = 0, host = "127.0.0.1") {
    this.port = await this._native.listen(port, host);
    return this.port;
  }

  /** Disconnect everyone and stop listening; the process may then exit. */
  async close(callback) {
    try {
      await this._native.close();
      callback?.();
    } catch (err) {
      if (!callback) throw err;
      callback(err);
    }
  }

  of(name) {
    const ns = name.startsWith("/") ? name : `/${name}`;
    let nsp = this._nsps.get(ns);
    if (!nsp) {
      nsp = new Namespace(this, ns);
      this._nsps.set(ns, nsp);
    }
    return nsp;
  }

  on(event, listener) {
    if (event === "connection" || event === "connect") this.sockets.on(event, listener);
    else super.on(event, listener);
    return this;
  }

  use(fn) {
    this.sockets.use(fn);
    return this;
  }

  to(room) {
    return this.sockets.to(room);
  }

  in(room) {
    return this.sockets.in(room);
  }

  except(room) {
    return this.sockets.except(room);
  }

  get volatile() {
    return this.sockets.volatile;
  }

  get local() {
    return this.sockets.local;
  }

  timeout(ms) {
    return this.sockets.timeout(ms);
  }

  emit(event, ...args) {
    if (event === "error") return super.emit(event, ...args);
    return this.sockets.emit(event, ...args);
  }

  emitWithAck(event, ...args) {
    return this.sockets.emitWithAck(event, ...args);
  }

  send(...args) {
    return this.sockets.send(...args);
  }

  write(...args) {
    return this.sockets.write(...args);
  }

  fetchSockets() {
    return this.sockets.fetchSockets();
  }

  socketsJoin(room) {
    return this.sockets.socketsJoin(room);
  }

  socketsLeave(room) {
    return this.sockets.socketsLeave(room);
  }

  disconnectSockets(close = false) {
    return this.sockets.disconnectSockets(close);
  }
}

module.exports = { Server, Namespace, Socket, BroadcastOperator };
