// The user-visible behaviour of the job commands and the worker, as processes: exit codes, --json,
// NDJSON progress, SIGKILL and SIGTERM of workers.

import {type ChildProcess, spawn} from 'node:child_process'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {BIN, runCli} from '../helpers/cli.js'
import {dropDatabase, freshDatabase, sql} from '../helpers/pg.js'

interface Spawned {
  child: ChildProcess
  lines: string[]
  exited: Promise<number | null>
  events(): Array<Record<string, any>>
}

function spawnWorker(db: string, extra: string[] = []): Spawned {
  const env: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'}
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k]
  const child = spawn(process.execPath, [BIN, 'worker', '-d', db, '--json', '--poll-interval', '200ms', ...extra], {env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe']})
  const lines: string[] = []
  let buf = ''
  child.stdout!.on('data', (d) => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()!
    lines.push(...parts.filter(Boolean))
  })
  child.stderr!.on('data', (d) => lines.push(`stderr: ${d}`))
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  return {child, lines, exited, events: () => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))}
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const job = async (db: string, id: string) => (await sql(db, `SELECT *, id::text AS id FROM steep_repl.work_queue WHERE id = $1`, [id]))[0]
const enqueue = async (db: string, p: object) => String((await sql(db, `SELECT steep_repl.enqueue('noop', $1::jsonb) AS id`, [JSON.stringify(p)]))[0].id)

describe('job commands and workers (CLI)', () => {
  let db: string
  const spawned: Spawned[] = []
  beforeAll(async () => {
    db = await freshDatabase('jobscli')
    expect((await runCli(['install', '-d', db])).code).toBe(0)
  })
  afterAll(async () => {
    for (const s of spawned) s.child.kill('SIGKILL')
    await dropDatabase(db)
  })

  it('a worker killed with SIGKILL mid-job: another worker reclaims the job after the lease and completes it', async () => {
    const a = spawnWorker(db, ['--lease', '2s', '--heartbeat', '1'])
    spawned.push(a)
    await until('worker a started', () => a.events().some((e) => e.event === 'started'))
    const id = await enqueue(db, {seconds: 3, items: 3})
    await until('claimed by a', () => a.events().some((e) => e.event === 'claimed' && e.job === id))
    await new Promise((r) => setTimeout(r, 500))
    a.child.kill('SIGKILL')
    await a.exited
    const b = spawnWorker(db, ['--lease', '2s'])
    spawned.push(b)
    const done = await until('complete', async () => {
      const r = await job(db, id)
      return r.status === 'complete' ? r : undefined
    })
    expect(done.attempts).toBe(2)
    expect(done.lease_owner).toBeNull()
    const ev = b.events()
    expect(ev.find((e) => e.event === 'reclaimed' && e.job === id)).toMatchObject({status: 'pending', error: expect.stringMatching(/lease expired/)})
    expect(ev.find((e) => e.event === 'complete' && e.job === id)).toMatchObject({attempt: 2})
    // the killed worker is no longer live (3 heartbeats of 1 s), so health counts one
    await until('a not live', async () => (await sql(db, `SELECT count(*)::int AS n FROM steep_repl.workers w WHERE steep_repl.worker_is_live(w)`))[0].n === 1)
    const h = await runCli(['health', '-d', db, '--json'])
    expect(h.json().workers).toMatchObject({live: 1, staleLeases: 0})
    b.child.kill('SIGTERM')
    expect(await b.exited).toBe(0)
  })

  it('SIGTERM: a job longer than the grace period is released back to the queue, never left locked', async () => {
    const w = spawnWorker(db, ['--grace', '300ms'])
    spawned.push(w)
    await until('started', () => w.events().some((e) => e.event === 'started'))
    const id = await enqueue(db, {seconds: 30, items: 2})
    await until('claimed', () => w.events().some((e) => e.event === 'claimed' && e.job === id))
    w.child.kill('SIGTERM')
    expect(await w.exited).toBe(0)
    const r = await job(db, id)
    expect(r).toMatchObject({status: 'pending', attempts: 0, lease_owner: null})
    expect(r.error_message).toMatch(/released by worker:.* while shutting down/)
    expect(w.events().map((e) => e.event)).toEqual(expect.arrayContaining(['stopping', 'released', 'stopped']))
    const me = w.events()[0]!.worker
    expect((await sql(db, `SELECT count(*)::int AS n FROM steep_repl.workers WHERE id = $1`, [me]))[0].n).toBe(0)
    await sql(db, `SELECT steep_repl.cancel_job($1)`, [id])
  })

  it('SIGTERM: a job that ends within the grace period finishes', async () => {
    const w = spawnWorker(db, ['--grace', '10s'])
    spawned.push(w)
    await until('started', () => w.events().some((e) => e.event === 'started'))
    const id = await enqueue(db, {seconds: 1})
    await until('claimed', () => w.events().some((e) => e.event === 'claimed' && e.job === id))
    w.child.kill('SIGTERM')
    expect(await w.exited).toBe(0)
    expect((await job(db, id)).status).toBe('complete')
  })

  it('--no-wait queues and prints the id; wait times out (5), cancel (4); show and list', async () => {
    const q = await runCli(['jobs', 'run', 'noop', '-d', db, '--params', '{"seconds": 30}', '--no-wait'])
    expect(q.code).toBe(0)
    const id = q.stdout.trim()
    expect(id).toMatch(/^\d+$/)
    expect(q.stderr).toMatch(/no live worker takes noop: it waits until one starts/)
    const w = await runCli(['jobs', 'wait', id, '-d', db, '--timeout', '1s'])
    expect(w.code).toBe(5)
    expect(w.stderr).toMatch(/timed out after 1s waiting for job/)
    const c = await runCli(['jobs', 'cancel', id, '-d', db, '--json'])
    expect(c.code).toBe(0)
    expect(c.json()).toMatchObject({id, status: 'cancelled'})
    const w2 = await runCli(['jobs', 'wait', id, '-d', db, '--json'])
    expect(w2.code).toBe(4)
    expect(w2.json().error).toMatchObject({code: 'cancelled', exitCode: 4})
    const missing = await runCli(['jobs', 'show', '999999', '-d', db])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/job 999999 does not exist/)
    const s = await runCli(['jobs', 'show', id, '-d', db, '--json'])
    expect(s.json()).toMatchObject({id, operation: 'noop', status: 'cancelled', params: {seconds: 30}})
    const l = await runCli(['jobs', 'list', '-d', db, '--status', 'cancelled', '--json'])
    expect(l.json().jobs.map((j: {id: string}) => j.id)).toContain(id)
  })

  it('--direct with --json: one document on stdout, NDJSON progress on stderr only with --progress-json', async () => {
    const r = await runCli(['jobs', 'run', 'noop', '-d', db, '--params', '{"seconds": 0.6, "items": 2}', '--direct', '--json', '--progress-json'])
    expect(r.code).toBe(0)
    const doc = r.json()
    expect(doc).toMatchObject({status: 'complete', executor: 'direct', result: {items: 2}})
    const ndjson = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    expect(ndjson.length).toBeGreaterThan(2)
    expect(ndjson.at(-1)).toMatchObject({job: doc.id, status: 'complete', percent: 100})
  })

  it('exit 1 when the job fails, 5 and cancelled when a direct run times out, 2 for bad params (nothing queued)', async () => {
    const f = await runCli(['jobs', 'run', 'noop', '-d', db, '--params', '{"fail": "disk full"}', '--direct'])
    expect(f.code).toBe(1)
    expect(f.stderr).toMatch(/job \d+ \(noop\) failed: disk full/)
    const t = await runCli(['jobs', 'run', 'noop', '-d', db, '--params', '{"seconds": 30}', '--direct', '--timeout', '1s', '--json'])
    expect(t.code).toBe(5)
    const id = /job (\d+)/.exec(t.json().error.message)![1]!
    expect(await job(db, id)).toMatchObject({status: 'cancelled', error_message: expect.stringMatching(/timed out after 1s/)})
    const [before] = await sql(db, `SELECT count(*)::int AS n FROM steep_repl.work_queue`)
    const b = await runCli(['jobs', 'run', 'noop', '-d', db, '--params', '{"seconds": "x", "password": "hunter2"}'])
    expect(b.code).toBe(2)
    expect(b.stderr).toMatch(/invalid params for noop/)
    const [after] = await sql(db, `SELECT count(*)::int AS n FROM steep_repl.work_queue`)
    expect(after.n).toBe(before.n)
  })
})
