import client from "./client.js";

export const { io, connect, Socket } = client;
export default io;
