// A cluster node in a process of its own, for presence.test.mjs and
// cluster.test.mjs: joins the cluster at argv[2] (Redis URL) with key prefix
// argv[3] (and node TTL argv[4] ms, 1000 by default), prints
// `{"port":…,"nodeId":…}` once listening, and runs until it is killed.
import { Server } from "roomcast";
import { presenceApp } from "./helpers.mjs";

const [url, prefix, ttl] = process.argv.slice(2);
// `node --test test/` runs every script under test/, this one too, without
// arguments: it is not a test by itself.
if (!url) process.exit(0);
const io = new Server({ redis: { url, prefix, nodeTtl: Number(ttl ?? 1000) } });
presenceApp(io.enablePresence());
const port = await io.listen(0);
console.log(JSON.stringify({ port, nodeId: io.nodeId }));
