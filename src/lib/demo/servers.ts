// The demo's working directory: its embedded servers, the snapshot, a password file, and a state
// file (demo.json) from which `steep-repl demo --stop --dir DIR` stops servers left running by
// --keep, from another process.
//
//   DIR/demo.json     what runs here (roles, ports, data directories, binaries)
//   DIR/pgpass        the servers' passwords, mode 0600, for PGPASSFILE
//   DIR/servers/      the data directories (steep-pgNN-*), see lib/embedded/server.ts
//   DIR/snapshot/     the snapshot written and applied by the demo

import {execFileSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {alive, binaryRoot, type EmbeddedServer, type PgMajor, SUPPORTED_MAJORS} from '../embedded/server.js'
import {StateError, UsageError} from '../errors.js'

export const STATE_FILE = 'demo.json'
const OWNED = [STATE_FILE, 'pgpass', 'servers', 'snapshot']

export interface ServerEntry {
  role: 'source' | 'target'
  major: PgMajor
  port: number
  dataDir: string
  binDir: string
}

export interface DemoState {
  format: 'steep-repl-demo'
  pid: number
  kept: boolean
  createdAt: string
  servers: ServerEntry[]
}

export interface DemoDir {
  dir: string
  /** The directory was made by the demo (then it is removed whole at the end). */
  created: boolean
  serversDir: string
  snapshotDir: string
  pgpass: string
}

/** Prepares DIR (default: a new directory in the OS temp dir). A given DIR must be empty or missing. */
export function prepareDemoDir(dir?: string): DemoDir {
  let created = false
  let root: string
  if (dir === undefined) {
    root = mkdtempSync(path.join(tmpdir(), 'steep-demo-'))
    created = true
  } else {
    root = path.resolve(dir)
    if (existsSync(root)) {
      if (existsSync(path.join(root, STATE_FILE))) {
        throw new UsageError(`${root} holds a demo already (${STATE_FILE})`, {hint: `Stop it and remove it with: steep-repl demo --stop --dir ${root}`})
      }
      if (readdirSync(root).length > 0) throw new UsageError(`--dir ${root} is not empty`, {hint: 'Give an empty or new directory; the demo removes what it created there at the end.'})
    } else {
      mkdirSync(root, {recursive: true})
      created = true
    }
  }
  // As root the servers run as the postgres OS user, which must reach its data directory.
  if (process.getuid?.() === 0) requireTraversable(path.dirname(root))
  chmodSync(root, 0o755)
  const serversDir = path.join(root, 'servers')
  mkdirSync(serversDir, {mode: 0o755})
  chmodSync(serversDir, 0o755)
  return {dir: root, created, serversDir, snapshotDir: path.join(root, 'snapshot'), pgpass: path.join(root, 'pgpass')}
}

/** As root: every directory above DIR must let other users through (the servers run as postgres). */
function requireTraversable(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new UsageError(`${d} is closed to other users (mode ${(statSync(d).mode & 0o777).toString(8)}): the embedded servers run as the postgres OS user when steep-repl runs as root, and cannot reach a directory below it`, {
        hint: 'Choose a --dir under /tmp or /var/tmp, or run the demo as an ordinary user.',
      })
    }
    if (path.dirname(d) === d) return
  }
}

export function writeState(d: DemoDir, servers: EmbeddedServer[], roles: Array<ServerEntry['role']>, kept: boolean): DemoState {
  const state: DemoState = {
    format: 'steep-repl-demo',
    pid: process.pid,
    kept,
    createdAt: new Date().toISOString(),
    servers: servers.map((s, i) => ({role: roles[i]!, major: s.major, port: s.port, dataDir: s.dataDir, binDir: s.binDir})),
  }
  writeFileSync(path.join(d.dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n')
  return state
}

/** A libpq password file for the demo's servers (mode 0600), so the printed URLs work as given. */
export function writePgpass(d: DemoDir, servers: EmbeddedServer[]): void {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:')
  const lines = servers.map((s) => `127.0.0.1:${s.port}:*:${esc(s.user)}:${esc(s.password)}`)
  writeFileSync(d.pgpass, lines.join('\n') + '\n', {mode: 0o600})
}

/**
 * Marks kept servers as owned by their own postmaster: the embedded harness reaps a server whose
 * owner process is gone, and the demo process is about to exit.
 */
export function handOverOwnership(servers: EmbeddedServer[]): void {
  for (const s of servers) {
    const pid = postmasterPid(s.dataDir)
    if (pid) writeFileSync(path.join(s.dataDir, 'owner.pid'), String(pid))
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}


export function readState(dir: string): DemoState {
  const file = path.join(path.resolve(dir), STATE_FILE)
  let raw: string
  try {
    raw = readFileSync(file, 'utf8')
  } catch {
    throw new UsageError(`no demo in ${path.resolve(dir)} (${STATE_FILE} not found)`, {hint: 'Give the directory that steep-repl demo --keep printed.'})
  }
  const state = JSON.parse(raw) as DemoState
  if (state.format !== 'steep-repl-demo' || !Array.isArray(state.servers)) throw new StateError(`${file} is not a steep-repl demo state file`)
  return state
}

export interface StopResult {
  dir: string
  stopped: Array<{role: string; port: number; wasRunning: boolean}>
  removed: boolean
}

function runAsArgs(): {uid?: number; gid?: number} {
  if (process.getuid?.() !== 0) return {}
  try {
    return {uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim())}
  } catch {
    return {}
  }
}

/** Stops one server of a state file (pg_ctl stop, fast then immediate); true when it was running. */
export function stopServerEntry(s: ServerEntry): boolean {
  const pid = postmasterPid(s.dataDir)
  if (!pid || !alive(pid)) return false
  const binDir = existsSync(s.binDir) ? s.binDir : SUPPORTED_MAJORS.includes(s.major) ? path.join(binaryRoot(s.major), 'bin') : s.binDir
  const pgdata = path.join(s.dataDir, 'data')
  const opts = {...runAsArgs(), stdio: 'pipe' as const}
  try {
    execFileSync(path.join(binDir, 'pg_ctl'), ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '30', '-s'], opts)
  } catch {
    try {
      execFileSync(path.join(binDir, 'pg_ctl'), ['stop', '-D', pgdata, '-m', 'immediate', '-w', '-s'], opts)
    } catch {
      if (alive(pid)) process.kill(pid, 'SIGQUIT')
    }
  }
  return true
}

/** Removes what the demo created in DIR, and DIR itself when it is then empty. */
export function removeDemoDir(dir: string): boolean {
  const root = path.resolve(dir)
  for (const e of OWNED) rmSync(path.join(root, e), {recursive: true, force: true})
  try {
    rmdirSync(root)
    return true
  } catch {
    return !existsSync(root)
  }
}

/** `demo --stop --dir DIR`: stops the servers a kept demo left running and removes its files. */
export function stopDemo(dir: string): StopResult {
  const root = path.resolve(dir)
  const state = readState(root)
  if (!state.kept && alive(state.pid) && state.pid !== process.pid) {
    throw new StateError(`the demo in ${root} is still running (pid ${state.pid})`, {hint: 'Interrupt it (Ctrl-C): it stops and removes its servers itself.'})
  }
  const stopped = state.servers.map((s) => ({role: s.role, port: s.port, wasRunning: stopServerEntry(s)}))
  return {dir: root, stopped, removed: removeDemoDir(root)}
}
