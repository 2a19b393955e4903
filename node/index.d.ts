// The typed facade of `roomcast`: socket.io's server API (v4), served by a
// native Rust core. Event arguments are JSON values and Buffers.
import { EventEmitter } from "node:events";
import type { ServerStats } from "./native";

export type { ServerStats };

export interface ServerOptions {
  /** Engine.IO path (default "/socket.io/"). */
  path?: string;
  /** Milliseconds between server pings (default 25000). */
  pingInterval?: number;
  /** Milliseconds to wait for a pong (default 20000). */
  pingTimeout?: number;
  /** Milliseconds a client has to connect to a namespace (default 45000). */
  connectTimeout?: number;
  /** Largest message in bytes (default 1e6). */
  maxHttpBufferSize?: number;
  /** Allowed origins (CORS and WebSocket upgrades); any when absent, `true` or "*". */
  cors?: { origin?: string | string[] | boolean };
  /** Join a cluster over Redis (a URL, or options): broadcasts, rooms,
   *  presence, `fetchSockets`, `socketsJoin` / `socketsLeave` /
   *  `disconnectSockets`, broadcast acks and `serverSideEmit` span every
   *  server on the same Redis and prefix. */
  redis?: string | RedisOptions;
  /** socket.io's connection state recovery (off when absent; `{}` for the defaults): a
   *  client that loses its connection and comes back within `maxDisconnectionDuration`
   *  gets its id, rooms and `data` back and every event it missed, in order
   *  (`socket.recovered`). Each recoverable event carries its offset as its last argument,
   *  which socket.io-client passes to listeners too. With `redis`, across nodes. */
  connectionStateRecovery?: RecoveryOptions;
  /** Frames that may wait to be written to one connection (default 4096). */
  outboundQueueMessages?: number;
  /** Bytes that may wait to be written to one connection (default 8 MiB). */
  outboundQueueBytes?: number;
  /** What a full outbound queue does with an event that is not volatile (volatile ones are
   *  dropped): "close" disconnects the client ("transport close" for it; it reconnects, and
   *  with recovery gets what it missed), "drop" drops the event. Default "close". */
  overflow?: "close" | "drop";
  /** Serve Prometheus metrics (connections, sockets, rooms and presence members per namespace,
   *  messages and bytes, drops, ack timeouts, recovery hits and misses, Redis publish latency and
   *  errors, cluster request timeouts) at this path, e.g. "/metrics"; off when absent. */
  metricsPath?: string;
  /** Connections open at once, in total (unlimited when absent); beyond, HTTP 503 before any upgrade. */
  maxConnections?: number;
  /** Connections open at once from one IP address; beyond, HTTP 429. */
  maxConnectionsPerIp?: number;
  /** New connections per second from one IP address (an Engine.IO handshake or a WebSocket;
   *  polls of an open session do not count); beyond, HTTP 429 "connection_rate". */
  connectionRatePerIp?: number;
  /** New connections at once from one IP address (default: twice `connectionRatePerIp`). */
  connectionBurstPerIp?: number;
}

export interface RecoveryOptions {
  /** Milliseconds a disconnected client may take to come back (default 120000). */
  maxDisconnectionDuration?: number;
  /** Whether a recovered socket skips `io.use` middlewares (default true). */
  skipMiddlewares?: boolean;
  /** Events kept per namespace at most (default 10000); a client further behind gets a new session. */
  maxPackets?: number;
}

export interface RedisOptions {
  /** `redis://`, `rediss://` (TLS), `redis-cluster://host:port?node=host:port`,
   *  `redis-sentinel://host:port?sentinelServiceName=name`. */
  url: string;
  /** Prefix of every key and channel (default "roomcast"). */
  prefix?: string;
  /** Milliseconds after which a silent node is dead and its members leave (default 10000, at least 300). */
  nodeTtl?: number;
  /** Milliseconds `listen` waits for Redis before serving anyway (default 5000). */
  connectTimeout?: number;
  /** Milliseconds a cluster-wide operation (`fetchSockets`, `serverSideEmitWithAck`, …) waits
   *  for the other servers (default 5000; broadcast acks wait their own timeout plus this).
   *  A server that has not answered by then is named in the answer's `missing`. */
  requestTimeout?: number;
}

/** What a cluster-wide answer adds: the ids of the servers (nodes) that did not answer
 *  within the request timeout (dead, frozen, overloaded); empty when the answer is
 *  complete, and always without Redis. Not enumerable. */
export interface PartialAnswer {
  readonly missing: string[];
}

/** An array gathered from every server of a cluster, with the servers that did not answer. */
export type PartialArray<T> = T[] & PartialAnswer;

/** How many sockets an operation reached on every server, and the servers that did not answer. */
export interface ClusterCount {
  count: number;
  missing: string[];
}

/** Each other server's ack to `serverSideEmitWithAck` (its first argument); `nodes[i]` gave `[i]`. */
export type ServerSideResponses = PartialArray<any> & { readonly nodes: string[] };

export type PresenceStatus = "online" | "away" | "busy";

/** A socket's presence metadata: `status` (default "online") and whatever the app adds. */
export interface PresenceMeta {
  status?: PresenceStatus;
  [key: string]: any;
}

/** A member of a room with presence: a user (all its connections), or a socket without a user id. */
export interface Member {
  /** The user id, or the socket id when `anonymous`. */
  userId: string;
  /** Present (true) when the socket had no user id. */
  anonymous?: true;
  /** Its connections in the room, on every node. */
  connections: number;
  meta: PresenceMeta & { status: PresenceStatus };
  /** Milliseconds since the Unix epoch. */
  joinedAt: number;
  lastSeen: number;
}

/** The one argument of the `presence:join` / `presence:leave` / `presence:update` events clients get. */
export interface PresenceEvent extends Member {
  room: string;
}

/** A socket of a cluster node that died, as `io.on("node_lost")` gets it. */
export interface LostSocket {
  /** The dead node's id. */
  node: string;
  namespace: string;
  sid: string;
  userId: string | null;
}

export interface Handshake {
  headers: Record<string, string>;
  query: Record<string, string>;
  auth: Record<string, any>;
  address: string;
  url: string;
  time: string;
  issued: number;
  xdomain: boolean;
  secure: boolean;
}

/** A socket's handshake as another server of the cluster knows it. */
export type RemoteHandshake = Omit<Handshake, "time" | "issued">;

/** An error carrying the core's stable code, e.g. "ERR_TIMEOUT", "ERR_NOT_FOUND". */
export interface RoomcastError extends Error {
  code: string;
}

/** An ack timeout of a broadcast ("ERR_TIMEOUT"), with the responses that came and the
 *  servers of the cluster that did not report in time. */
export interface BroadcastTimeoutError extends RoomcastError {
  responses: any[];
  missing: string[];
}

/** A `serverSideEmitWithAck` some servers did not answer in time ("ERR_TIMEOUT"). */
export interface ServerSideTimeoutError extends BroadcastTimeoutError {
  /** The server of each response. */
  nodes: string[];
}

export type Middleware = (socket: Socket, next: (err?: Error & { data?: any }) => void) => void | Promise<void>;

export interface BroadcastOperator extends Broadcasting {}
export declare class BroadcastOperator {
  emit(event: string, ...args: any[]): boolean;
}

export interface TimedEmitter {
  emit(event: string, ...args: any[]): boolean;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
}

export declare class Socket extends EventEmitter {
  readonly id: string;
  readonly nsp: Namespace;
  readonly server: Server;
  readonly handshake: Handshake;
  /** Free for the app: whatever it keeps with the socket. In a cluster, what the other
   *  servers' `fetchSockets` see (JSON values and Buffers), sent whenever it changes;
   *  with connection state recovery, what a recovered socket gets back. */
  data: any;
  /** Whether it took up a disconnected socket's session (connection state recovery). */
  readonly recovered: boolean;
  readonly connected: boolean;
  readonly disconnected: boolean;
  /** The rooms it is in, its own (its id) first. */
  readonly rooms: Set<string>;
  /** Send to this client; a function last receives its ack. */
  emit(event: string, ...args: any[]): boolean;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
  timeout(ms: number): TimedEmitter;
  send(...args: any[]): boolean;
  write(...args: any[]): boolean;
  join(rooms: string | string[]): void;
  leave(room: string): void;
  /** Name its user, in a middleware (`io.use`) before `next()` and before it
   *  joins rooms; else throws `ERR_INVALID_ARGUMENT`. */
  setUserId(id: string | number): void;
  /** Its user id, or null. */
  readonly userId: string | null;
  /** Replace its presence metadata (rooms with presence get `presence:update`);
   *  a bad `status` throws `ERR_INVALID_ARGUMENT`. */
  setPresence(meta: PresenceMeta): void;
  /** Its presence metadata; null once it is gone. */
  readonly presence: PresenceMeta | null;
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  readonly broadcast: BroadcastOperator;
  /** Sent only if its outgoing queue has room. */
  readonly volatile: BroadcastOperator;
  /** Bytes queued for its connection and not yet written (0 once it is gone). */
  readonly bufferedAmount: number;
  /** Resolves once nothing is buffered for it (at once if nothing is, or when it disconnects):
   *  the drain notification of a sender that paces itself by `bufferedAmount`. */
  drained(): Promise<void>;
  disconnect(close?: boolean): this;
  onAny(listener: (event: string, ...args: any[]) => void): this;
  prependAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  listenersAny(): Array<(event: string, ...args: any[]) => void>;
  on(event: "disconnect" | "disconnecting", listener: (reason: string) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

/** A socket of another server of the cluster, as `fetchSockets` gives it (socket.io's
 *  RemoteSocket): a snapshot of its details, and ways to act on it through its server. */
export declare class RemoteSocket {
  readonly id: string;
  readonly handshake: RemoteHandshake;
  /** Its rooms when fetched, its own (its id) first. */
  readonly rooms: Set<string>;
  /** Its `socket.data` when fetched. */
  readonly data: any;
  /** The server (node) it is connected to. */
  readonly nodeId: string;
  readonly userId: string | null;
  /** `io.to(id).emit(...)`: a function last gets `(err, responses)` (needs `timeout`). */
  emit(event: string, ...args: any[]): boolean;
  timeout(ms: number): BroadcastOperator;
  join(room: string | string[]): Promise<ClusterCount>;
  leave(room: string | string[]): Promise<ClusterCount>;
  disconnect(close?: boolean): this;
}

/** What a namespace (and the server, for "/") does with its sockets. Without `local`,
 *  on every server of a cluster. */
export interface Broadcasting {
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  /** Only this server's sockets. */
  readonly local: BroadcastOperator;
  timeout(ms: number): BroadcastOperator;
  /** Each selected socket's ack (its first argument), or a `BroadcastTimeoutError`. */
  emitWithAck(event: string, ...args: any[]): Promise<PartialArray<any>>;
  send(...args: any[]): boolean;
  write(...args: any[]): boolean;
  /** This server's sockets as `Socket`s, the other servers' as `RemoteSocket`s; resolves
   *  (partially: `missing`) when some server does not answer in time. */
  fetchSockets(): Promise<PartialArray<Socket | RemoteSocket>>;
  /** This server's sockets join at once, the other servers' when they get the request. */
  socketsJoin(room: string | string[]): Promise<ClusterCount>;
  socketsLeave(room: string | string[]): Promise<ClusterCount>;
  /** This server's sockets are disconnected at once, the other servers' when they get the request. */
  disconnectSockets(close?: boolean): Promise<ClusterCount>;
}

/** Questions about a namespace (the server's: "/") on every server of a cluster. */
export interface ClusterQueries {
  /** The rooms joined by name (not the sockets' own rooms), sorted. */
  allRooms(): Promise<PartialArray<string>>;
  /** How many sockets the namespace has. */
  socketsCount(): Promise<ClusterCount>;
}

/** Presence in the rooms of a namespace (the server's: "/"). */
export interface PresenceQueries {
  /** Track presence in `room`, or in every named room when absent. */
  enablePresence(room?: string): this;
  /** The members of `room` (on every node of a cluster). */
  presence(room: string): Promise<Member[]>;
  /** How many members `room` has (on every node of a cluster). */
  presenceCount(room: string): Promise<number>;
}

export interface Namespace extends Broadcasting, PresenceQueries, ClusterQueries {}
export declare class Namespace extends EventEmitter {
  /** Send to every socket of the namespace. */
  emit(event: string, ...args: any[]): boolean;
  readonly name: string;
  readonly server: Server;
  /** Connected sockets by id. */
  readonly sockets: Map<string, Socket>;
  use(fn: Middleware): this;
  on(event: "connection" | "connect", listener: (socket: Socket) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export interface Server extends Broadcasting, PresenceQueries, ClusterQueries {}
export declare class Server extends EventEmitter {
  /** Send to every socket of "/". */
  emit(event: string, ...args: any[]): boolean;
  constructor(options?: ServerOptions);
  /** Listen on `port` at once (errors are emitted as "error"). */
  constructor(port: number, options?: ServerOptions);
  /** The main namespace, "/". */
  readonly sockets: Namespace;
  /** The bound port once listening. */
  readonly port: number | undefined;
  /** Listen on `port` (0 picks a free one) and `host` (default 127.0.0.1); resolves to the port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Disconnect everyone and stop listening; the process may then exit. */
  close(callback?: (err?: Error) => void): Promise<void>;
  of(name: string): Namespace;
  use(fn: Middleware): this;
  /** Whether `userId` has a connection (on any node of a cluster). */
  isOnline(userId: string): Promise<boolean>;
  /** Whether each of `userIds` has a connection, in one call. */
  onlineUsers(userIds: Iterable<string>): Promise<Record<string, boolean>>;
  /** This server's cluster node id; null without Redis. */
  readonly nodeId: string | null;
  /** The server's counters now: sockets, rooms, users, messages and bytes in/out, drops,
   *  slow-consumer closes, rate limiting, refused connections, and over Redis the cluster's
   *  messages in/out, errors (failed Redis writes, messages lost during an outage) and
   *  request timeouts (queries answered partially). */
  stats(): ServerStats;
  /** The counters and gauges in the Prometheus text format (OpenMetrics), as served at `metricsPath`. */
  metrics(): string;
  /** The ids of the cluster's servers, this one included, sorted; [] without Redis. */
  nodes(): Promise<string[]>;
  /** Send `event` to the other servers' `io.on(event)` listeners (not this one's); a
   *  function last gets `(err, responses)` as from `serverSideEmitWithAck`. */
  serverSideEmit(event: string, ...args: any[]): boolean;
  /** Each other server's ack, or a `ServerSideTimeoutError` when some did not answer within
   *  the request timeout. Servers with no listener for `event` answer no ack ([]: `undefined`);
   *  without Redis, no server: []. */
  serverSideEmitWithAck(event: string, ...args: any[]): Promise<ServerSideResponses>;
  on(event: "connection" | "connect", listener: (socket: Socket) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  /** Once per socket of a cluster node that died, on the node that cleaned up after it. */
  on(event: "node_lost", listener: (lost: LostSocket) => void): this;
  /** Any other name: a server-side event from another server (`serverSideEmit`), its
   *  arguments then an ack callback, whose arguments are the answer. */
  on(event: string, listener: (...args: any[]) => void): this;
}
