// Imports the exported Sprig journals (Automerge documents saved by sprig-core) into an
// automerge-repo NodeFS storage directory, which automerge-repo-sync-server then serves.
// Usage: node seed.mjs DATA_DIR EXPORT_DIR   (writes EXPORT_DIR/urls.json)
import fs from "node:fs"
import path from "node:path"
import { Repo } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const [dataDir, exportDir] = process.argv.slice(2)
if (!dataDir || !exportDir) {
  console.error("usage: node seed.mjs DATA_DIR EXPORT_DIR")
  process.exit(2)
}
fs.mkdirSync(dataDir, { recursive: true })
const repo = new Repo({ network: [], storage: new NodeFSStorageAdapter(dataDir) })
const files = fs.readdirSync(exportDir).filter(f => f.endsWith(".automerge")).sort()
const urls = []
let entries = 0
for (const f of files) {
  const bytes = new Uint8Array(fs.readFileSync(path.join(exportDir, f)))
  const handle = repo.import(bytes)
  await handle.whenReady()
  entries += Object.keys(handle.docSync().entries ?? {}).length
  urls.push(handle.url)
}
await repo.flush()
fs.writeFileSync(path.join(exportDir, "urls.json"), JSON.stringify(urls))
console.error(`seeded ${urls.length} documents (${entries} entries) into ${dataDir}`)
process.exit(0)
