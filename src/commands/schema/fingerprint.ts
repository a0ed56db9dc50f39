import {Errors, Flags} from '@oclif/core'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {ExitCode} from '../../lib/errors.js'
import {renderFingerprints, schemaFilterFlags} from '../../lib/schema/cli.js'
import {computeFingerprints, type TableFingerprintWithInput} from '../../lib/schema/fingerprint-io.js'
import {parseQualifiedName} from '../../lib/schema/names.js'

export default class SchemaFingerprint extends BaseCommand<typeof SchemaFingerprint> {
  static override summary = 'Print one SHA-256 fingerprint per table, over its columns in order.'
  static override description = `Each table's fingerprint covers, per column in order, the name, the full type with its typmod as format_type prints it, nullability and collation. Defaults are recorded in the column definitions (shown with --json) but are not part of the hash, since sequence names differ between nodes. The exact input string is documented in docs/schema.md and shown with --show-input, so another tool can reproduce it; steep_repl.compute_fingerprint(schema, table) computes the same value inside the database.

Ordinary tables, partitioned tables and partitions of the user's schemas are fingerprinted; the steep_repl schema and extension tables are not. A table named with --table that does not exist is reported (missing, with --json) and the command exits 1 after printing the others.`

  static override examples = [
    '<%= config.bin %> schema fingerprint -d postgres://postgres@localhost/app',
    '<%= config.bin %> schema fingerprint -d postgres://postgres@localhost/app --table public.orders --table \'"Sales"."Order Items"\' --show-input',
    '<%= config.bin %> schema fingerprint -d postgres://postgres@localhost/app --schema app --json',
  ]

  static override flags = {
    db: dbFlag,
    ...schemaFilterFlags,
    table: Flags.string({char: 't', summary: 'Only this table, as schema.table (no schema = public; repeat for several).', multiple: true, helpValue: 'SCHEMA.TABLE'}),
    'show-input': Flags.boolean({summary: 'Also print the exact string each fingerprint hashes.'}),
  }

  async run(): Promise<{tables: TableFingerprintWithInput[]; missing: string[]}> {
    const conn = await this.connection(this.flags.db)
    const wanted = this.flags.table?.map((t) => parseQualifiedName(t))
    const tables = await withClient(conn, (c) => computeFingerprints(c, {schemas: this.flags.schema, excludeSchemas: this.flags['exclude-schema'], tables: wanted}))
    const missing = (wanted ?? []).filter((w) => !tables.some((t) => t.schema === w.schema && t.table === w.name)).map((w) => `${w.schema}.${w.name}`)
    if (!this.jsonEnabled()) this.log(renderFingerprints(tables, this.flags['show-input']))
    if (missing.length) {
      // A script comparing fingerprints must not take a table that is not there for a match: the
      // report of the tables found is printed, then exit 1.
      for (const m of missing) this.note(`error: table ${m} not found`)
      if (this.jsonEnabled()) this.logJson(this.toSuccessJson({tables, missing}))
      throw new Errors.ExitError(ExitCode.error)
    }
    return {tables, missing}
  }
}
