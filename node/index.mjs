import roomcast from "./index.js";

export const { Server, Namespace, Socket, RemoteSocket, BroadcastOperator } = roomcast;
export default roomcast;
