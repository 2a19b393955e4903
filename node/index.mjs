import roomcast from "./index.js";

export const { Server, Namespace, Socket, BroadcastOperator } = roomcast;
export default roomcast;
