#!/usr/bin/env node
// Production entry: compiled commands from dist/, command list from oclif.manifest.json (lazy load).
//
// `--version` alone is answered before @oclif/core is imported: the import costs more than everything
// else in the process on small machines, and scripts call `--version` often. The output is oclif's.
const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const {readFileSync} = await import('node:fs')
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`${pkg.oclif.bin}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  // Start-up costs every command pays, measured on a 2-core host (each ~30-60 ms of CPU):
  // - @oclif/core checks the Node.js version against its own engines with semver when imported
  //   (its documented switch turns that off; npm checks this package's engines at install).
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'
  // - node-postgres asks whether it runs in a Cloudflare Worker: it reads navigator.userAgent and,
  //   with no navigator (Node.js 20), constructs a fetch Response, which loads undici. Node.js 21+
  //   defines navigator with this userAgent; defining it here gives 20 the same, cheap, answer.
  if (globalThis.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', {value: {userAgent: `Node.js/${process.versions.node.split('.')[0]}`}, configurable: true, writable: true, enumerable: true})
  }
  const {execute} = await import('../dist/cli.js')
  await execute({dir: import.meta.url})
}
