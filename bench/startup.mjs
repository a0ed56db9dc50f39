#!/usr/bin/env node
// Startup time of the CLI: `steep-repl --version` and `steep-repl --help`, median and p90 over N
// runs, next to a bare `node -e ''` on the same machine for scale. Prints figures; asserts nothing.
// Target (issue 2): --version median under 0.4 s.
import {spawnSync} from 'node:child_process'
import {cpus} from 'node:os'
import {fileURLToPath} from 'node:url'

const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const runs = Number(process.env.RUNS ?? 21)

function measure(args) {
  const times = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const r = spawnSync(process.execPath, args, {stdio: 'ignore'})
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`)
    times.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  times.sort((a, b) => a - b)
  return {median: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)]}
}

const rows = [
  ['node -e ""', measure(['-e', ''])],
  ['steep-repl --version', measure([bin, '--version'])],
  ['steep-repl --help', measure([bin, '--help'])],
  ['steep-repl install --help', measure([bin, 'install', '--help'])],
]
console.log(`startup, ${runs} runs each, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`)
console.log('command'.padEnd(28) + 'median ms'.padStart(10) + 'p90 ms'.padStart(10))
for (const [name, r] of rows) console.log(name.padEnd(28) + r.median.toFixed(0).padStart(10) + r.p90.toFixed(0).padStart(10))
const v = rows[1][1].median
console.log(`--version median ${(v / 1000).toFixed(3)} s (target < 0.400 s): ${v < 400 ? 'met' : 'NOT met'}`)
