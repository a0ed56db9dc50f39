// Bad-input catalogue, part 1: flags and connection strings that are refused before any server is
// contacted. One row per case: the arguments, the documented exit code (docs/exit-codes.md), a
// fragment the message must carry, and — where the command would write files — a check that no
// file was created. `postgres://unreachable.invalid/db` is never resolved: if a case reached the
// network it would exit 6, not the expected code, so every row also proves the check comes first.

import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {type CliResult, runCli} from '../helpers/cli.js'

const DB = 'postgres://unreachable.invalid/db'
const root = mkdtempSync(path.join(tmpdir(), 'steep-badarg-'))
const out = (name: string) => path.join(root, name)
afterAll(() => rmSync(root, {recursive: true, force: true}))

interface Case {
  name: string
  args: string[]
  code: number
  message: RegExp
  /** A path the command must not have created. */
  noFile?: string
}

const cases: Case[] = [
  // Commands and flags that do not exist, missing flags and arguments.
  {name: 'unknown command', args: ['frobnicate'], code: 2, message: /command frobnicate not found/},
  {name: 'unknown flag', args: ['install', '--db', DB, '--bogus-flag'], code: 2, message: /Nonexistent flag: --bogus-flag/},
  {name: 'snapshot generate without --output', args: ['snapshot', 'generate', '--db', DB], code: 2, message: /Missing required flag output/},
  {name: 'jobs show without an id', args: ['jobs', 'show', '--db', DB], code: 2, message: /Missing 1 required arg:\s+id/},
  // Malformed and out-of-range values.
  {name: '--parallel 0', args: ['snapshot', 'generate', '--db', DB, '--output', out('p0'), '--parallel', '0'], code: 2, message: /--parallel[\s\S]*greater than or equal to 1/, noFile: out('p0')},
  {name: '--compression not in the list', args: ['snapshot', 'generate', '--db', DB, '--output', out('bz'), '--compression', 'bzip2'], code: 2, message: /--compression=bzip2 to be one of: none, gzip, lz4, zstd/, noFile: out('bz')},
  {name: 'malformed size', args: ['snapshot', 'generate', '--db', DB, '--output', out('sz'), '--split-larger-than', '12parsecs'], code: 2, message: /invalid size "12parsecs"/, noFile: out('sz')},
  {name: 'unknown job operation', args: ['jobs', 'run', 'frobnicate', '--db', DB], code: 2, message: /unknown operation frobnicate/},
  {name: 'port above 65535', args: ['node', 'register', 'n1', '--db', DB, '--host', 'h', '--port', '70000'], code: 2, message: /less than or equal to 65535/},
  {name: 'unreadable --samples file', args: ['walrus', 'simulate', '--samples', '/nonexistent/samples.csv'], code: 2, message: /cannot read: ENOENT/},
  {name: 'walrus --max below --min', args: ['walrus', 'tune', '--db', DB, '--max', '1GB', '--min', '4GB'], code: 2, message: /--max \(1024 MB\) is below --min \(4096 MB\)/},
  {name: 'worker --concurrency 0', args: ['worker', '--db', DB, '--concurrency', '0'], code: 2, message: /--concurrency[\s\S]*greater than or equal to 1/},
  {name: 'malformed duration', args: ['worker', '--db', DB, '--poll-interval', 'forever'], code: 2, message: /--poll-interval: "forever" is not a duration/},
  {name: 'negative duration', args: ['node', 'heartbeat', 'n1', '--db', DB, '--interval', '-1s'], code: 2, message: /--interval: "-1s" is not a duration/},
  {name: 'priority not a number', args: ['jobs', 'run', 'noop', '--db', DB, '--priority', 'high'], code: 2, message: /--priority[\s\S]*Expected an integer but received: high/},
  {name: 'compression level out of range', args: ['snapshot', 'generate', '--db', DB, '--output', out('lv'), '--compression', 'gzip', '--level', '99'], code: 2, message: /--level 99 is out of range for gzip: use 1 to 9/, noFile: out('lv')},
  {name: 'unsupported PostgreSQL major', args: ['demo', '--pg-major', '14'], code: 2, message: /--pg-major=14 to be one of: 15, 16, 17, 18/},
  {name: 'invalid node id (checked before connecting)', args: ['node', 'register', 'bad id!', '--db', DB, '--host', 'h'], code: 2, message: /invalid node id "bad id!"/},
  {name: 'table name with an unterminated quote', args: ['merge', 'analyze', '--node-a', DB, '--node-b', DB, '--tables', '"unterminated'], code: 2, message: /unterminated quoted identifier/},
  {name: 'table name with three parts', args: ['merge', 'analyze', '--node-a', DB, '--node-b', DB, '--tables', 'a.b.c'], code: 2, message: /"a\.b\.c" has 3 parts: give schema\.table/},
  // Contradictory flags.
  {name: '--slot with --no-slot', args: ['snapshot', 'generate', '--db', DB, '--output', out('sl'), '--slot', 'a', '--no-slot'], code: 2, message: /--no-slot=true cannot also be provided when using --slot/, noFile: out('sl')},
  {name: '--resume with --clean', args: ['snapshot', 'apply', '--db', DB, '--input', root, '--resume', '--clean'], code: 2, message: /cannot also be provided when using --resume/},
  {name: '--bidirectional with --no-wait', args: ['node', 'init', 'n1', '--db', DB, '--from', 'n0', '--source', DB, '--bidirectional', '--no-wait'], code: 2, message: /--no-wait=true cannot also be provided when using --bidirectional/},
  // Connection strings of every wrong shape.
  {name: 'neither URL, key=value nor a name', args: ['health', '--db', 'not a url at all'], code: 2, message: /--db: not a connection string or a connection name/},
  {name: 'unknown libpq keyword', args: ['health', '--db', 'host=localhost frobnicate=1'], code: 2, message: /invalid connection option "frobnicate"/},
  {name: 'URL port out of range', args: ['health', '--db', 'postgres://localhost:99999/db'], code: 2, message: /invalid port value "99999"/},
  {name: 'key=value port not a number', args: ['health', '--db', 'host=localhost port=x5432'], code: 2, message: /invalid port value "x5432"/},
  {name: 'unknown config name', args: ['health', '--db', 'nosuchconfigname'], code: 2, message: /"nosuchconfigname" is not a connection string and no connection of that name/},
  {name: 'invalid sslmode', args: ['health', '--db', 'host=localhost sslmode=sometimes'], code: 2, message: /invalid sslmode value "sometimes"/},
  {name: 'several hosts', args: ['health', '--db', 'postgres://h1,h2/db'], code: 2, message: /multiple hosts in one connection string are not supported/},
  {name: 'unreadable sslrootcert', args: ['health', '--db', 'host=localhost sslmode=verify-full sslrootcert=/nonexistent/ca.pem'], code: 2, message: /sslrootcert/},
  {name: 'nothing listening (connection, not usage)', args: ['health', '--db', 'postgres://127.0.0.1:1/db'], code: 6, message: /could not connect to .*127\.0\.0\.1:1\/db/},
  // A directory that is not a snapshot.
  {name: 'snapshot verify of a missing directory', args: ['snapshot', 'verify', '/nonexistent/snap'], code: 2, message: /is not a snapshot directory \(no manifest\.json\)/},
]

// Each spawn costs ~1 s of CPU: start them all up front, four at a time, and let each `it` check its own.
const results = new Map<string, Promise<CliResult>>()
function start(): void {
  const queue = [...cases]
  const next = (): void => {
    const c = queue.shift()
    if (!c) return
    const p = runCli(c.args)
    results.set(c.name, p)
    void p.finally(next)
  }
  for (let i = 0; i < 4; i++) next()
}

describe('bad input: arguments and connection strings (no server needed)', () => {
  start()
  it.each(cases)('$name → exit $code', async (c) => {
    while (!results.has(c.name)) await new Promise((r) => setTimeout(r, 50))
    const r = await results.get(c.name)!
    expect(r.code, r.stderr).toBe(c.code)
    expect(r.stderr).toMatch(c.message)
    expect(r.stdout).toBe('')
    if (c.noFile) expect(existsSync(c.noFile)).toBe(false)
  })

  it('--json turns a usage error into one error document with the same exit code', async () => {
    const r = await runCli(['health', '--json', '--db', 'host=localhost frobnicate=1'])
    expect(r.code).toBe(2)
    expect(r.json().error).toMatchObject({code: 'usage', exitCode: 2})
    expect(r.json().error.message).toMatch(/frobnicate/)
  })
})
