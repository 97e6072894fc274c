// D automerge-repo clients (WebSocket network adapter, no storage), all in this one Node
// process, each fetching every document from automerge-repo-sync-server, `rounds` times.
// Prints one JSON line per round, like `sprig-bench-sync load`.
// Usage: node client.mjs PORT URLS_JSON DEVICES ROUNDS
import fs from "node:fs"
import { Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const [port, urlsFile, devicesArg, roundsArg] = process.argv.slice(2)
const urls = JSON.parse(fs.readFileSync(urlsFile, "utf8"))
const devices = parseInt(devicesArg ?? "10")
const rounds = parseInt(roundsArg ?? "3")
const TIMEOUT_MS = 900_000
// The WebSocket adapter throws from a timer when it retries a socket that is being closed.
process.on("uncaughtException", e => {
  if (String(e).includes("Websocket not ready")) return
  console.error(e)
  process.exit(1)
})

async function client(i, round) {
  const adapter = new BrowserWebSocketClientAdapter(`ws://127.0.0.1:${port}`)
  const repo = new Repo({ network: [adapter], peerId: `bench-${round}-${i}` })
  const handles = urls.map(u => repo.find(u))
  // whenReady gives up after automerge-repo's own 60 s timeout; keep waiting (the handle
  // goes on syncing) until this driver's deadline.
  const ready = async h => {
    for (;;) {
      try {
        return await h.whenReady(["ready"])
      } catch (e) {
        if (e?.name !== "TimeoutError" && !String(e).includes("timed out")) throw e
      }
    }
  }
  await Promise.all(handles.map(ready))
  return { repo, adapter, handles }
}

for (let round = 0; round < rounds; round++) {
  const t0 = performance.now()
  const timer = setTimeout(() => {
    console.error("client: timed out")
    process.exit(1)
  }, TIMEOUT_MS)
  const clients = await Promise.all([...Array(devices).keys()].map(i => client(i, round)))
  const seconds = (performance.now() - t0) / 1000
  clearTimeout(timer)
  let docs = 0
  let entries = 0
  for (const c of clients) {
    for (const h of c.handles) {
      const d = h.docSync()
      if (d) {
        docs += 1
        entries += Object.keys(d.entries ?? {}).length
      }
    }
  }
  console.log(JSON.stringify({
    server: "automerge-repo-sync-server", round, devices, docs, entries, seconds,
    docs_per_s: docs / seconds, entries_per_s: entries / seconds,
  }))
  for (const c of clients) {
    try {
      c.adapter.disconnect()
    } catch {
      // a socket still connecting cannot be closed cleanly; the process exits below anyway
    }
  }
}
process.exit(0)
