// The package's own files, wherever its code runs from: compiled (dist/lib/…), bundled into chunks
// (dist/chunks/…, see scripts/bundle.mjs) or the TypeScript sources (src/…, under the tests).
// Paths relative to a module's own URL would differ between the three.
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

function findPackage(): {root: string; json: {version: string}} {
  for (let dir = here; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file)) {
      const json = JSON.parse(readFileSync(file, 'utf8'))
      if (json.name === 'steep-repl') return {root: dir, json}
    }
    if (path.dirname(dir) === dir) throw new Error(`steep-repl's package.json not found above ${here}`)
  }
}

const pkg = findPackage()

/** The package version, for records that say which steep-repl wrote them. */
export const VERSION: string = pkg.json.version

/** src/ when running from the TypeScript sources, else dist/ (where the build copies assets). */
export const CODE_DIR = path.join(pkg.root, here.startsWith(path.join(pkg.root, 'src') + path.sep) ? 'src' : 'dist')
