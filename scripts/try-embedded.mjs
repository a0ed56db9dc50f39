#!/usr/bin/env node
// The README's first command until `steep-repl demo` lands: starts a throwaway embedded PostgreSQL,
// runs `steep-repl install` and `steep-repl health` against it exactly as a user would, prints what
// they print, then stops the server and removes its data directory (also on Ctrl-C).
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'
import {startServer} from '../dist/lib/embedded/server.js'

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const server = await startServer()
const stop = async () => {
  await server.stop()
}
process.on('SIGINT', () => stop().then(() => process.exit(130)))

let status = 0
try {
  const url = server.url().replace(`:${encodeURIComponent(server.password)}@`, '@')
  console.error(`embedded PostgreSQL ${server.major} on port ${server.port} (password in PGPASSWORD)`)
  for (const args of [['install', '-d', url], ['health', '-d', url]]) {
    console.error(`\n$ steep-repl ${args.join(' ')}`)
    const r = spawnSync(process.execPath, [bin, ...args], {stdio: 'inherit', env: {...process.env, PGPASSWORD: server.password}})
    status ||= r.status ?? 1
  }
} finally {
  await stop()
}
process.exit(status)
