// The typed facade of `roomcast`: socket.io's server API (v4), served by a
// native Rust core. Event arguments are JSON values and Buffers.
import { EventEmitter } from "node:events";

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

/** An error carrying the core's stable code, e.g. "ERR_TIMEOUT", "ERR_NOT_FOUND". */
export interface RoomcastError extends Error {
  code: string;
}

/** An ack timeout of a broadcast, with the responses that came. */
export interface BroadcastTimeoutError extends RoomcastError {
  responses: any[];
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
  /** Free for the app: whatever it keeps with the socket. */
  data: any;
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
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  readonly broadcast: BroadcastOperator;
  /** Sent only if its outgoing queue has room. */
  readonly volatile: BroadcastOperator;
  disconnect(close?: boolean): this;
  onAny(listener: (event: string, ...args: any[]) => void): this;
  prependAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  listenersAny(): Array<(event: string, ...args: any[]) => void>;
  on(event: "disconnect" | "disconnecting", listener: (reason: string) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

/** What a namespace (and the server, for "/") does with its sockets. */
export interface Broadcasting {
  to(room: string | string[]): BroadcastOperator;
  in(room: string | string[]): BroadcastOperator;
  except(room: string | string[]): BroadcastOperator;
  readonly volatile: BroadcastOperator;
  readonly local: BroadcastOperator;
  timeout(ms: number): BroadcastOperator;
  emitWithAck(event: string, ...args: any[]): Promise<any[]>;
  send(...args: any[]): boolean;
  write(...args: any[]): boolean;
  fetchSockets(): Promise<Socket[]>;
  socketsJoin(room: string | string[]): void;
  socketsLeave(room: string | string[]): void;
  disconnectSockets(close?: boolean): void;
}

export interface Namespace extends Broadcasting {}
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

export interface Server extends Broadcasting {}
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
  on(event: "connection" | "connect", listener: (socket: Socket) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}
