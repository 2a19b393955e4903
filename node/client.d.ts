// The typed facade of `roomcast/client`: socket.io-client's `io()` and
// `Socket` (WebSocket transport), over roomcast's native client.
export interface SocketOptions {
  /** Engine.IO path (default "/socket.io/"). */
  path?: string;
  /** The CONNECT payload, or a function handing it over (called on connect). */
  auth?: Record<string, any> | ((cb: (auth: Record<string, any>) => void) => void);
  query?: Record<string, string>;
  extraHeaders?: Record<string, string>;
  /** Only "websocket" is spoken; a list without it is refused. */
  transports?: string[];
  autoConnect?: boolean;
  reconnection?: boolean;
  reconnectionAttempts?: number;
  reconnectionDelay?: number;
  reconnectionDelayMax?: number;
  randomizationFactor?: number;
  /** Milliseconds allowed for each connection attempt (default 20000). */
  timeout?: number;
  /** Milliseconds to wait for acks of emits with a callback (none by default); with
   *  `retries`, how long each try waits (10000 by default). */
  ackTimeout?: number;
  /** At-least-once emits (socket.io-client's option, default 0): every emit asks for an ack and
   *  goes out one at a time, in order; one not acked within `ackTimeout` is sent again, up to
   *  `retries` more times, and one whose connection dropped is sent again on the next. A
   *  roomcast server handles each such emit once however often it arrives. Acks are
   *  error-first (`(err, ...args)`); an emit given up on gets a timeout error. */
  retries?: number;
}

export interface TimedEmitter {
  emit(event: string, ...args: any[]): Socket;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
}

type Listener = (...args: any[]) => void;

export declare class Socket {
  constructor(url: string, options?: SocketOptions);
  /** The socket id while connected. */
  readonly id: string | undefined;
  readonly connected: boolean;
  readonly disconnected: boolean;
  /** Connected or trying to be. */
  readonly active: boolean;
  readonly recovered: boolean;
  auth: SocketOptions["auth"];
  connect(): this;
  open(): this;
  /** Send to the server (buffered while connecting or reconnecting); a function last receives its ack. */
  emit(event: string, ...args: any[]): this;
  emitWithAck(event: string, ...args: any[]): Promise<any>;
  timeout(ms: number): TimedEmitter;
  send(...args: any[]): this;
  onAny(listener: (event: string, ...args: any[]) => void): this;
  prependAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  listenersAny(): Array<(event: string, ...args: any[]) => void>;
  disconnect(): this;
  close(): this;
  on(event: "connect", listener: () => void): this;
  on(event: "disconnect", listener: (reason: string) => void): this;
  on(event: "connect_error", listener: (err: Error & { data?: any }) => void): this;
  on(event: string, listener: Listener): this;
  once(event: string, listener: Listener): this;
  off(event: string, listener: Listener): this;
  removeListener(event: string, listener: Listener): this;
  removeAllListeners(event?: string): this;
  listeners(event: string): Listener[];
  listenerCount(event: string): number;
}

/** A socket of the namespace named by the URL's path; connects unless `autoConnect: false`. */
export declare function io(url: string, options?: SocketOptions): Socket;
export declare const connect: typeof io;
export default io;
