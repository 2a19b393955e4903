import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run build` writes dist/, which `roomcast serve --chat --static dist` serves
// (same origin: socket.io-client connects to the page's host). `npm run dev`
// proxies Socket.IO to a roomcast on port 3000 (make demo).
export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/socket.io": { target: "http://127.0.0.1:3000", ws: true } } },
  test: { environment: "node" },
});
