// `steep-repl demo` end to end, as a newcomer runs it (the built CLI, no TTY), at a reduced size:
// it exits 0 only when its checks hold, prints what it did, and leaves no server or directory
// behind; --keep leaves servers that really hold what the demo reported, and --stop removes them.

import {chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import pg from 'pg'
import {afterAll, describe, expect, it} from 'vitest'
import {spawn} from 'node:child_process'
import {BIN, runCli} from '../helpers/cli.js'

const major = process.env.PG_MAJOR ?? '18'
const base = mkdtempSync(path.join(tmpdir(), 'steep-demo-test-'))
// As root the demo's servers run as the postgres OS user, which must reach the directories.
chmodSync(base, 0o755)

/** Processes whose command line mentions the path (postmasters and their children). */
function processesUsing(p: string): string[] {
  const found: string[] = []
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(p)) found.push(`${pid}: ${cmd}`)
    } catch {
      /* gone */
    }
  }
  return found
}

afterAll(async () => {
  // Never leave servers behind, even when an assertion failed half-way.
  for (const d of readdirSync(base)) {
    if (existsSync(path.join(base, d, 'demo.json'))) await runCli(['demo', '--stop', '--dir', path.join(base, d)])
  }
  rmSync(base, {recursive: true, force: true})
})

describe('steep-repl demo', () => {
  it('runs every step, prints the commands and checks, and removes everything at the end', {timeout: 150_000}, async () => {
    const dir = path.join(base, 'plain')
    const r = await runCli(['demo', '--rows', '2000', '--pg-major', major, '--dir', dir], {timeoutMs: 140_000})
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const out = r.stdout
    // The equivalent commands, without passwords.
    for (const cmd of ['steep-repl install -d postgresql://postgres@127.0.0.1:', 'steep-repl snapshot generate -d ', 'steep-repl snapshot apply -d ', '--subscribe --source ', 'steep-repl schema compare --node-a ', `steep-repl merge analyze`, '--strategy last-modified --direct', 'steep-repl walrus tune -d ']) {
      expect(out).toContain(cmd)
    }
    expect(out).not.toMatch(/postgres:[^@\s]+@127\.0\.0\.1/)
    expect(out).not.toContain('✗')
    // What it claims, with its numbers.
    const counts = out.match(/✓ row counts: all 7 tables equal on both servers \((\d+) rows\)/)
    expect(counts, out).not.toBeNull()
    expect(Number(counts![1])).toBeGreaterThanOrEqual(2000)
    expect(out).toMatch(/✓ snapshot rows: (\d+) rows applied of \1 written/)
    expect(out).toMatch(/✓ replicated writes: arrived on the target [\d.]+ s after the commit on the source, price change included/)
    expect(out).toMatch(/new orders \(2026 partition and default partition\): 2 of 2 on the target/)
    const onlyB = Number(major) >= 16 ? 2 : 0
    expect(out).toContain(`✓ merge analyze: found 5 conflicts, 4 rows only on the source, ${onlyB} only on the target`)
    expect(out).toContain(`✓ merge run: kept the source's row 2×, the target's 3×, copied 4 rows to the target and ${onlyB} to the source`)
    expect(out).toMatch(/✓ merge result: merge analyze again: (\d+) of \1 rows match/)
    expect(out).toMatch(/✓ walrus tune: \d+ requested checkpoints: max_wal_size 32 MB → \d+ MB/)
    expect(out).toContain('✓ health: the source is ready')
    expect(out).toContain('steep-repl health -d postgresql://postgres@127.0.0.1:')
    expect(out).toContain('Every check passed.')
    // Nothing left: no directory, no server process.
    expect(existsSync(dir)).toBe(false)
    expect(processesUsing(dir)).toEqual([])
  })

  it('--keep --json leaves servers holding what it reported; --stop removes them', {timeout: 150_000}, async () => {
    const dir = path.join(base, 'kept')
    const r = await runCli(['demo', '--rows', '2000', '--pg-major', major, '--dir', dir, '--keep', '--json'], {timeoutMs: 140_000})
    expect(r.code, r.stderr).toBe(0)
    const doc = r.json()
    expect(doc).toMatchObject({ok: true, kept: true, pgMajor: Number(major), stopCommand: `steep-repl demo --stop --dir ${dir}`})
    expect(doc.checks.map((c: {name: string}) => c.name)).toEqual(['health', 'snapshot rows', 'replicated writes', 'schema compare', 'merge analyze', 'merge run', 'merge result', 'walrus tune', 'row counts', 'subscription'])
    expect(doc.checks.every((c: {ok: boolean}) => c.ok)).toBe(true)
    expect(JSON.stringify(doc)).not.toMatch(/password/i)
    expect(doc.merge.after).toEqual({conflict: 0, aOnly: 0, bOnly: 0})
    expect(doc.walrus.applied).toBe(true)

    // Look at the kept servers independently of the demo.
    const [source, target] = doc.servers as Array<{role: string; socket: string; port: number}>
    const read = async (socket: string, sqlText: string) => {
      const kv = Object.fromEntries(socket.split(' ').map((p) => p.split('=')))
      const c = new pg.Client({host: kv.host, port: Number(kv.port), user: kv.user, database: kv.dbname})
      await c.connect()
      try {
        return (await c.query(sqlText)).rows
      } finally {
        await c.end()
      }
    }
    const countSql = `SELECT (SELECT count(*) FROM shop."Customers")::int AS c, (SELECT count(*) FROM shop.orders)::int AS o,
                             (SELECT count(*) FROM shop.order_items)::int AS i, (SELECT count(*) FROM "Inventory"."StockLevel")::int AS s`
    const [a] = await read(source!.socket, countSql)
    const [b] = await read(target!.socket, countSql)
    expect(b).toEqual(a)
    const reported = Object.fromEntries((doc.tables as Array<{table: string; source: number; target: number}>).map((t) => [t.table, t]))
    expect(reported['shop.Customers']).toEqual({table: 'shop.Customers', source: a.c, target: a.c})
    expect(reported['Inventory.StockLevel']).toEqual({table: 'Inventory.StockLevel', source: a.s, target: a.s})
    expect(await read(target!.socket, `SELECT count(*)::int AS n FROM shop."Customers" WHERE email = 'zoe.obrien@example.com'`)).toEqual([{n: 1}])
    expect(await read(source!.socket, `SELECT setting::int AS mb FROM pg_settings WHERE name = 'max_wal_size'`)).toEqual([{mb: doc.walrus.nowMb}])
    expect(processesUsing(dir).length).toBeGreaterThan(0)

    const stop = await runCli(['demo', '--stop', '--dir', dir, '--json'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(stop.json()).toMatchObject({removed: true, stopped: [{role: 'source', wasRunning: true}, {role: 'target', wasRunning: true}]})
    expect(existsSync(dir)).toBe(false)
    expect(processesUsing(dir)).toEqual([])
  })

  it('stops and removes everything on Ctrl-C in the middle of a job', {timeout: 120_000}, async () => {
    const dir = path.join(base, 'interrupted')
    const child = spawn(process.execPath, [BIN, 'demo', '--rows', '20000', '--pg-major', major, '--dir', dir], {
      env: {...process.env, CI: '1', NO_COLOR: '1', XDG_CONFIG_HOME: '/nonexistent-steep-test-config'},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    const code = await new Promise<number | null>((resolve) => {
      let sent = false
      child.stdout.on('data', (d) => {
        out += d
        // Interrupt once the snapshot job is under way (its own handler cancels the job too).
        if (!sent && out.includes('── 4/9')) {
          sent = true
          setTimeout(() => child.kill('SIGINT'), 300)
        }
      })
      child.on('close', (c) => resolve(c))
    })
    expect(out, err).toContain('── 4/9')
    expect(code, out + err).toBe(130)
    expect(err).toContain(`SIGINT: stopping the demo servers and removing ${dir}`)
    expect(existsSync(dir)).toBe(false)
    expect(processesUsing(dir)).toEqual([])
  })

  it('refuses a directory that is not empty, and --stop without a demo', async () => {
    const dir = mkdtempSync(path.join(base, 'busy-'))
    const other = path.join(dir, 'precious.txt')
    await import('node:fs').then((fs) => fs.writeFileSync(other, 'keep me'))
    const r = await runCli(['demo', '--dir', dir])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('is not empty')
    expect(readFileSync(other, 'utf8')).toBe('keep me')
    const s = await runCli(['demo', '--stop', '--dir', dir])
    expect(s.code).toBe(2)
    expect(s.stderr).toContain('no demo in')
    const bad = await runCli(['demo', '--pg-major', '14'])
    expect(bad.code).toBe(2)
  })
})
