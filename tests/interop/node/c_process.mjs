// A C example server as the C suites start it: its port from the
// "listening on <port>" it prints, killed after the test.
import { spawn } from "node:child_process";
import { once } from "node:events";

/** Start `binary` with `args`: `{child, port, url, exited}` once it printed its port. */
export async function startC(t, binary, args = []) {
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => child.kill("SIGKILL"));
  const exited = once(child, "exit");
  let out = "";
  const port = await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (\d+)/);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`${binary} exited with ${code}: ${out}`)));
  });
  return { child, port, url: `http://127.0.0.1:${port}`, exited };
}
