// Test servers: embedded PostgreSQL by default; with STEEP_TEST_DOCKER=1 and a container runtime
// that answers, @testcontainers/postgresql instead (same settings). The container path cannot run on
// the project's machines (no Docker engine); it exists for contributors who have one.

import {EmbeddedServer, type PgMajor, SUPPORTED_MAJORS} from '../../src/lib/embedded/server.js'

export interface ServerInfo {
  /** TCP URL with the superuser password. */
  url: string
  /** key=value conninfo over the Unix socket (trust) — embedded only; equals url for containers. */
  socket: string
  port: number
  password: string
  major: number
  dataDir: string
}

export interface ServerHandle {
  info: ServerInfo
  /** Returns the URL of `database` on this server. */
  url(database?: string): string
  stop(): Promise<void>
  embedded?: EmbeddedServer
}

export function testMajor(): PgMajor {
  const v = Number(process.env.PG_MAJOR ?? 18)
  if (!SUPPORTED_MAJORS.includes(v as PgMajor)) throw new Error(`PG_MAJOR=${process.env.PG_MAJOR}: use one of ${SUPPORTED_MAJORS.join(', ')}`)
  return v as PgMajor
}

export async function startTestServer(opts: {major?: PgMajor; settings?: Record<string, string | number>} = {}): Promise<ServerHandle> {
  const major = opts.major ?? testMajor()
  if (process.env.STEEP_TEST_DOCKER === '1') return startContainer(major, opts.settings ?? {})
  const s = await new EmbeddedServer({major, settings: opts.settings}).start()
  return {
    info: {url: s.url(), socket: s.socketConninfo(), port: s.port, password: s.password, major, dataDir: s.dataDir},
    url: (db = 'postgres') => s.url(db),
    stop: () => s.stop(),
    embedded: s,
  }
}

async function startContainer(major: PgMajor, settings: Record<string, string | number>): Promise<ServerHandle> {
  const {PostgreSqlContainer} = await import('@testcontainers/postgresql')
  const password = 'steep-test-password'
  const args = Object.entries({wal_level: 'logical', max_replication_slots: 32, max_wal_senders: 32, fsync: 'off', ...settings}).flatMap(
    ([k, v]) => ['-c', `${k}=${v}`],
  )
  const c = await new PostgreSqlContainer(`postgres:${major}`).withPassword(password).withUsername('postgres').withCommand(['postgres', ...args]).start()
  const url = (db = 'postgres') => `postgresql://postgres:${password}@${c.getHost()}:${c.getPort()}/${db}`
  return {
    info: {url: url(), socket: url(), port: c.getPort(), password, major, dataDir: ''},
    url,
    stop: async () => {
      await c.stop()
    },
  }
}
