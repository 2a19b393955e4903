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

/** A cluster-wide answer: `value` with the ids of the nodes that did not
 *  answer in time as its non-enumerable `missing` (empty when complete). */
function partial(value, missing) {
  return Object.defineProperty(value, "missing", { value: missing, configurable: true });
}

/** A count across the cluster, `{ count, missing }`. */
function counted({ value, missing }) {
  return { count: value, missing };
}

/** A promise whose rejection nobody has to handle (socket.io's methods it
 *  stands for return nothing); awaiting it still sees the rejection. */
function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

/** Events of the server itself, never server-side events. */
const SERVER_RESERVED = new Set([
  "connection",
  "connect",
  "error",
  "node_lost",
  "new_namespace",
  "disconnect",
  "disconnecting",
  "connect_error",
  "newListener",
  "removeListener",
]);

// socket.data is what other nodes' fetchSockets see, and what a recovered
// socket gets back: in a cluster or with connection state recovery the
// facade hands it to the core whenever the app changes it, through proxies
// over its plain objects and arrays (class instances are kept as they are).
const TARGETS = new WeakMap();

function isPlain(value) {
  if (value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function unwrapped(value) {
  return TARGETS.get(value) ?? value;
}

/** `value`, or a proxy over it calling `changed()` after each change (nested plain values too). */
function watched(value, changed, proxies) {
  if (!isPlain(value) || TARGETS.has(value)) return value;
  let proxy = proxies.get(value);
  if (proxy === undefined) {
    proxy = new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        const d = Reflect.getOwnPropertyDescriptor(target, key);
        // A proxy must give non-configurable read-only properties as they are.
        return d && !d.configurable && !d.writable ? v : watched(v, changed, proxies);
      },
      set(target, key, v) {
        const ok = Reflect.set(target, key, unwrapped(v));
        changed();
        return ok;
      },
      defineProperty(target, key, descriptor) {
        const d = "value" in descriptor ? { ...descriptor, value: unwrapped(descriptor.value) } : descriptor;
        const ok = Reflect.defineProperty(target, key, d);
        changed();
        return ok;
      },
      deleteProperty(target, key) {
        const ok = Reflect.deleteProperty(target, key);
        changed();
        return ok;
      },
    });
    proxies.set(value, proxy);
    TARGETS.set(proxy, value);
  }
  return proxy;
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

  /** Only this server's sockets (not the other nodes' of a cluster). */
  get local() {
    return new BroadcastOperator(this.nsp, this.rooms, this.exceptRooms, { ...this.flags, local: true });
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
    if (this.flags.local) native.broadcastLocal(name, this.rooms, this.exceptRooms, event, args);
    else native.broadcast(name, this.rooms, this.exceptRooms, !!this.flags.volatile, event, args);
    return true;
  }

  /** Resolves to each socket's ack (its first argument), on every node, or
   *  rejects with `ERR_TIMEOUT` (`err.responses`: those that came,
   *  `err.missing`: the nodes that did not report) when some did not answer. */
  async emitWithAck(event, ...args) {
    if (this.flags.timeout === undefined) {
      throw new Error("broadcast acks need a timeout: io.timeout(ms).emitWithAck(...)");
    }
    const { native, name } = this.nsp;
    const { rooms, exceptRooms: except, flags } = this;
    const { value: replies, missing } = flags.local
      ? { value: await native.broadcastWithAck(name, rooms, except, event, args, flags.timeout), missing: [] }
      : await native.clusterBroadcastWithAck(name, rooms, except, !!flags.volatile, event, args, flags.timeout);
    const responses = replies.filter((r) => r.args).map((r) => r.args[0]);
    if (responses.length < replies.length || missing.length > 0) {
      throw Object.assign(timeoutError(), { responses, missing });
    }
    return partial(responses, missing);
  }

  /** The selected sockets of every node: this server's as its `Socket`
   *  objects, the others' as `RemoteSocket`s; `missing` names the nodes
   *  that did not answer in time. */
  async fetchSockets() {
    const { native, name, sockets, server } = this.nsp;
    if (this.flags.local) {
      const found = native.socketIds(name, this.rooms, this.exceptRooms).map((id) => sockets.get(id));
      return partial(found.filter(Boolean), []);
    }
    const here = server.nodeId;
    const { value, missing } = await native.clusterFetchSockets(name, this.rooms, this.exceptRooms);
    const found = [];
    for (const details of value) {
      if (details.node === here) {
        // Still in its middlewares when not known here: not connected yet.
        const socket = sockets.get(details.id);
        if (socket) found.push(socket);
      } else {
        found.push(new RemoteSocket(this.nsp, details));
      }
    }
    return partial(found, missing);
  }

  /** The selected sockets of every node join `room`: this server's before
   *  it returns. Resolves to `{ count, missing }`. */
  socketsJoin(room) {
    return this._socketsRoom(room, true);
  }

  /** The selected sockets of every node leave `room`, as `socketsJoin`. */
  socketsLeave(room) {
    return this._socketsRoom(room, false);
  }

  _socketsRoom(room, join) {
    const { native, name } = this.nsp;
    if (this.flags.local) {
      const count = native.socketsRoom(name, this.rooms, this.exceptRooms, list(room), join);
      return Promise.resolve({ count, missing: [] });
    }
    return quiet(native.clusterSocketsRoom(name, this.rooms, this.exceptRooms, list(room), join).then(counted));
  }

  /** Disconnect the selected sockets of every node (this server's before
   *  it returns); `close`: their whole connections. Resolves to `{ count, missing }`. */
  disconnectSockets(close = false) {
    const { native, name } = this.nsp;
    if (this.flags.local) {
      const count = native.disconnectSockets(name, this.rooms, this.exceptRooms, !!close);
      return Promise.resolve({ count, missing: [] });
    }
    return quiet(native.clusterDisconnectSockets(name, this.rooms, this.exceptRooms, !!close).then(counted));
  }
}

/** A socket of another node of the cluster, as `fetchSockets` gives it
 *  (socket.io's RemoteSocket): its details when asked, and the ways to act
 *  on it from here. */
class RemoteSocket {
  constructor(nsp, details) {
    this.id = details.id;
    this.handshake = details.handshake;
    this.rooms = new Set(details.rooms);
    this.data = details.data;
    /** The node it is connected to. */
    this.nodeId = details.node;
    this.userId = details.userId;
    Object.defineProperty(this, "_operator", { value: new BroadcastOperator(nsp, [details.id]) });
  }

  /** Send to it (through its node); a function last gets `(err, responses)` (needs `timeout`). */
  emit(event, ...args) {
    return this._operator.emit(event, ...args);
  }

  timeout(ms) {
    return this._operator.timeout(ms);
  }

  join(room) {
    return this._operator.socketsJoin(room);
  }

  leave(room) {
    return this._operator.socketsLeave(room);
  }

  disconnect(close = false) {
    this._operator.disconnectSockets(close);
    return this;
  }
}

/** One client's connection to a namespace, as socket.io's server-side Socket. */
class Socket extends EventEmitter {
  constructor(nsp, id, handshake) {
    super();
    this.nsp = nsp;
    this.id = id;
    this.handshake = handshake;
    this._data = {};
    /** Whether it took up a disconnected socket's session (connection state recovery). */
    this.recovered = false;
    this._dataProxies = new WeakMap();
    this._dataQueued = false;
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

  /** Free for the app; in a cluster, what other nodes' `fetchSockets` see
   *  (JSON values and Buffers), handed to the core whenever it changes. */
  get data() {
    return this.server._shared ? watched(this._data, () => this._dataChanged(), this._dataProxies) : this._data;
  }

  set data(value) {
    this._data = unwrapped(value);
    this._dataChanged();
  }

  _dataChanged() {
    if (!this.server._shared || this._dataQueued) return;
    this._dataQueued = true;
    queueMicrotask(() => {
      this._dataQueued = false;
      try {
        this.nsp.native.setData(this.nsp.name, this.id, this._data);
      } catch (err) {
        // Gone: nobody can fetch it any more.
        if (err.code !== "ERR_NOT_FOUND") console.error(`roomcast: the data of ${this.id} cannot be shared:`, err);
      }
    });
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

  /** Name the socket's user (in an `io.use` middleware, before it joins
   *  rooms): one presence member with the user's other sockets. */
  setUserId(id) {
    this.nsp.native.setUserId(this.nsp.name, this.id, typeof id === "number" ? String(id) : id);
  }

  /** The user id, or null. */
  get userId() {
    return this.nsp.native.userId(this.nsp.name, this.id);
  }

  /** Replace its presence metadata: `{ status: "online" | "away" | "busy", ... }`. */
  setPresence(meta) {
    this.nsp.native.setPresence(this.nsp.name, this.id, meta);
  }

  /** Its presence metadata (null once it is gone). */
  get presence() {
    return this.nsp.native.presenceMeta(this.nsp.name, this.id);
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

  /** Bytes queued for its connection and not yet written (0 once it is gone). */
  get bufferedAmount() {
    return this.nsp.native.bufferedAmount(this.nsp.name, this.id) ?? 0;
  }

  /** Resolves once nothing is buffered for it (at once if nothing is, or when it disconnects). */
  drained() {
    return this.nsp.native.drained(this.nsp.name, this.id);
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
    // A listener may still ack after its socket left (a retried emit of an
    // at-least-once client then gets that answer); one that never does is
    // let go after a while, so its event's task ends.
    for (const settle of this._pendingAcks) setTimeout(() => settle(false), LATE_ACK_MS).unref();
    this._pendingAcks.clear();
    fire(this, "disconnecting", [reason], this.id);
    fire(this, "disconnect", [reason], this.id);
  }
}

Object.assign(Socket.prototype, anyListeners, emitting);

/** How long a listener may take to ack after its socket left. */
const LATE_ACK_MS = 30_000;

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
    this.native.onConnect(name, async (sid, { handshake, recovered, skipMiddlewares, data }) => {
      const socket = new Socket(this, sid, handshake);
      socket.recovered = recovered;
      if (recovered) socket._data = data;
      try {
        if (!skipMiddlewares) await admit(this._middlewares, socket);
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
    return this._all().local;
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

  /** Track presence in `room`, or in every named room of the namespace. */
  enablePresence(room) {
    this.native.enablePresence(this.name, room === undefined ? undefined : String(room));
    return this;
  }

  /** The members of `room` (on every node of a cluster). */
  async presence(room) {
    return this.native.presence(this.name, String(room));
  }

  /** How many members `room` has (on every node of a cluster). */
  async presenceCount(room) {
    return this.native.presenceCount(this.name, String(room));
  }

  /** The rooms joined by name (not the sockets' own) on every node, sorted;
   *  `missing` names the nodes that did not answer in time. */
  async allRooms() {
    const { value, missing } = await this.native.clusterRooms(this.name);
    return partial(value, missing);
  }

  /** How many sockets the namespace has on every node: `{ count, missing }`. */
  async socketsCount() {
    return counted(await this.native.clusterCount(this.name));
  }
}

/** `redis: "redis://..."` or `{ url, prefix, nodeTtl, connectTimeout, requestTimeout }`. */
function redis(option) {
  if (option === undefined || option === null) return undefined;
  const r = typeof option === "string" ? { url: option } : option;
  return {
    url: r.url,
    prefix: r.prefix,
    nodeTtl: r.nodeTtl,
    connectTimeout: r.connectTimeout,
    requestTimeout: r.requestTimeout,
  };
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
    const cluster = redis(opts.redis);
    this._clustered = cluster !== undefined;
    /** socket.data lives in the core too: for other nodes, and for the
     *  session a disconnected socket leaves to its client. */
    this._shared = this._clustered || opts.connectionStateRecovery !== undefined;
    /** How long a server-side event waits for its listener's ack. */
    this._requestTimeout = cluster?.requestTimeout ?? 5000;
    this._serverEvents = new Set();
    this._native = new NativeServer({
      pingInterval: opts.pingInterval,
      pingTimeout: opts.pingTimeout,
      connectTimeout: opts.connectTimeout,
      maxHttpBufferSize: opts.maxHttpBufferSize,
      path: opts.path,
      corsOrigins: origins(opts.cors),
      redis: cluster,
      connectionStateRecovery: opts.connectionStateRecovery,
      outboundQueueMessages: opts.outboundQueueMessages,
      outboundQueueBytes: opts.outboundQueueBytes,
      overflow: opts.overflow,
      metricsPath: opts.metricsPath,
      maxConnections: opts.maxConnections,
      maxConnectionsPerIp: opts.maxConnectionsPerIp,
      connectionRatePerIp: opts.connectionRatePerIp,
      connectionBurstPerIp: opts.connectionBurstPerIp,
    });
    this._native.onNodeLost((lost) => fire(this, "node_lost", [lost], lost.sid));
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

  /** `connection` (main namespace), `error`, `node_lost`, and any other
   *  name: server-side events from the other nodes, `(...args, ack)`. */
  on(event, listener) {
    if (event === "connection" || event === "connect") this.sockets.on(event, listener);
    else {
      this._serverEvent(event);
      super.on(event, listener);
    }
    return this;
  }

  addListener(event, listener) {
    return this.on(event, listener);
  }

  once(event, listener) {
    this._serverEvent(event);
    return super.once(event, listener);
  }

  prependListener(event, listener) {
    this._serverEvent(event);
    return super.prependListener(event, listener);
  }

  prependOnceListener(event, listener) {
    this._serverEvent(event);
    return super.prependOnceListener(event, listener);
  }

  /** Hear `event` from the other nodes (once per name): the listeners get
   *  its arguments and an ack callback; the ack (its arguments) is the
   *  answer, none after the request timeout. */
  _serverEvent(event) {
    if (!this._clustered || typeof event !== "string" || SERVER_RESERVED.has(event)) return;
    if (this._serverEvents.has(event)) return;
    this._serverEvents.add(event);
    this._native.onServerEvent(event, (args) => {
      if (this.rawListeners(event).length === 0) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), this._requestTimeout);
        timer.unref();
        const ack = (...reply) => {
          clearTimeout(timer);
          resolve(reply);
        };
        fire(this, event, [...args, ack], "a server-side event");
      });
    });
  }

  use(fn) {
    this.sockets.use(fn);
    return this;
  }

  get volatile() {
    return this.sockets.volatile;
  }

  get local() {
    return this.sockets.local;
  }

  emit(event, ...args) {
    if (event === "error") return super.emit(event, ...args);
    return this.sockets.emit(event, ...args);
  }

  enablePresence(room) {
    this.sockets.enablePresence(room);
    return this;
  }

  /** Whether `userId` has a connection (on any node of a cluster). */
  async isOnline(userId) {
    return this._native.isOnline(String(userId));
  }

  /** `{ [userId]: online }` for each of `userIds`, in one call. */
  async onlineUsers(userIds) {
    return Object.fromEntries(await this._native.onlineUsers([...userIds].map(String)));
  }

  /** This server's cluster node id; null without Redis. */
  get nodeId() {
    return this._native.nodeId();
  }

  /** The server's counters now (sockets, rooms, messages and bytes in/out, drops, cluster errors, ...). */
  stats() {
    return this._native.stats();
  }

  /** The counters and gauges in the Prometheus text format, as served at `metricsPath`. */
  metrics() {
    return this._native.metrics();
  }

  /** The ids of the cluster's nodes, this one included, sorted; [] without Redis. */
  async nodes() {
    return this._native.nodes();
  }

  /** Send `event` to the other servers' `io.on(event, ...)` listeners; a
   *  function last gets `(err, responses)`, as `serverSideEmitWithAck`. */
  serverSideEmit(event, ...args) {
    if (SERVER_RESERVED.has(event)) throw new Error(`"${event}" is a reserved event name`);
    const ack = takeAck(args);
    const asked = this._serverSideEmit(event, args);
    if (ack) {
      asked.then(
        (responses) => ack(null, responses),
        (err) => ack(err, err.responses ?? []),
      );
    } else {
      asked.catch(() => {});
    }
    return true;
  }

  /** Resolves to each other server's ack (its first argument; `nodes`:
   *  which server gave each), or rejects with `ERR_TIMEOUT` (`err.responses`,
   *  `err.nodes`, `err.missing`) when some did not answer within the request timeout. */
  serverSideEmitWithAck(event, ...args) {
    return this._serverSideEmit(event, args);
  }

  async _serverSideEmit(event, args) {
    if (SERVER_RESERVED.has(event)) throw new Error(`"${event}" is a reserved event name`);
    const { value, missing } = await this._native.serverEmit(String(event), args);
    const responses = value.map((r) => r.args[0]);
    const nodes = value.map((r) => r.node);
    if (missing.length > 0) throw Object.assign(timeoutError(), { responses, nodes, missing });
    return Object.defineProperty(partial(responses, missing), "nodes", { value: nodes, configurable: true });
  }
}

// The main namespace's methods that the server has as they are (socket.io's
// `io.to(room)` is `io.sockets.to(room)`), non-enumerable like class methods.
for (const name of [
  "to",
  "in",
  "except",
  "timeout",
  "emitWithAck",
  "send",
  "write",
  "fetchSockets",
  "socketsJoin",
  "socketsLeave",
  "disconnectSockets",
  "presence",
  "presenceCount",
  "allRooms",
  "socketsCount",
]) {
  const method = {
    [name](...args) {
      return this.sockets[name](...args);
    },
  }[name];
  Object.defineProperty(Server.prototype, name, { value: method, writable: true, configurable: true });
}

module.exports = { Server, Namespace, Socket, RemoteSocket, BroadcastOperator };
