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
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
