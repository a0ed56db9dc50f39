import {Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../lib/base-command.js'
import {withClient} from '../lib/connection/connect.js'
import {describeConnection} from '../lib/connection/resolve.js'
import {install, type InstallResult, planInstall, readSchemaState, renderPlanSql} from '../lib/install/migrations.js'

export default class Install extends BaseCommand<typeof Install> {
  static override summary = 'Install or upgrade the steep_repl schema in a database.'
  static override description = `Applies the numbered migrations that are not yet recorded in steep_repl.schema_version, in one
transaction, under an advisory lock (a concurrent install waits, then finds nothing to do).
Running it again changes nothing. Access to the schema is revoked from PUBLIC.`

  static override examples = [
    '<%= config.bin %> install -d postgres://postgres@localhost/app',
    '<%= config.bin %> install -d "host=db1 dbname=app user=admin" --dry-run',
  ]

  static override flags = {
    db: dbFlag,
    'dry-run': Flags.boolean({summary: 'Print the SQL that would run and change nothing.'}),
  }

  async run(): Promise<InstallResult | {dryRun: true; from: number; to: number; sql: string}> {
    const conn = await this.connection(this.flags.db)
    return withClient(conn, async (client) => {
      if (this.flags['dry-run']) {
        const state = await readSchemaState(client)
        const plan = planInstall(state)
        const sql = renderPlanSql(plan, state.installed)
        if (!this.jsonEnabled()) process.stdout.write(sql)
        return {dryRun: true as const, from: plan.from, to: plan.pending.length ? plan.to : plan.from, sql}
      }
      const result = await install(client, () => this.note('another install is running on this database; waiting for it'))
      for (const m of result.modified) {
        this.note(`warning: migration ${m.version}_${m.name} changed since it was applied here (applied version kept)`)
      }
      if (result.applied.length === 0) this.log(`steep_repl schema is up to date (version ${result.to}) on ${describeConnection(conn)}`)
      else
        this.log(
          `steep_repl schema ${result.from === 0 ? 'installed' : `upgraded from version ${result.from}`} to version ${result.to} on ${describeConnection(conn)} (${result.applied.map((m) => `${m.version}_${m.name}`).join(', ')})`,
        )
      return result
    })
  }
}
