// Runs automerge-repo-sync-server unmodified, bound to 127.0.0.1 only (it listens on every
// interface by default). Environment as for the server itself: PORT, DATA_DIR.
import express from "express"

const listen = express.application.listen
express.application.listen = function (port, cb) {
  return listen.call(this, port, "127.0.0.1", cb)
}
const { Server } = await import("@automerge/automerge-repo-sync-server/src/server.js")
new Server()
