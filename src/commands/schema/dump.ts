import {Flags} from '@oclif/core'
import {writeFileSync} from 'node:fs'
import {BaseCommand, dbFlag} from '../../lib/base-command.js'
import {withClient} from '../../lib/connection/connect.js'
import {schemaFilterFlags} from '../../lib/schema/cli.js'
import {renderDdl, type SchemaDdl, type Section} from '../../lib/schema/ddl.js'
import {extractSchemaDdl} from '../../lib/schema/extract.js'

export default class SchemaDump extends BaseCommand<typeof SchemaDump> {
  static override summary = 'Print runnable DDL for the user objects of a database, read from its catalogs.'
  static override description = `Reads schemas, extensions, types and domains, sequences, tables (with partitions, identity and generated columns, collations, defaults and checks), views, materialized views, functions and procedures, constraints, indexes, triggers, rules, policies, extended statistics, comments and owners in one REPEATABLE READ transaction, with ACCESS SHARE locks on the tables, and prints them ordered by their dependencies (pg_depend).

The output has two sections. pre-data is what must exist before rows are loaded; post-data holds indexes (each a separate statement that can be built in parallel), primary keys and unique constraints attached with ADD CONSTRAINT … USING INDEX, partition index attachments, foreign keys, triggers, rules and policies.

The SQL uses the server's own pg_get_*def functions and quotes every identifier, so names of any shape round-trip. Object kinds it does not produce (user collations, operators, aggregates, casts, foreign tables, event triggers, text search configurations) are listed as warnings at the top and on stderr. Owners and privileges (GRANT/REVOKE rebuilding each ACL) are included unless --no-owner / --no-privileges; the roles must exist on the target. Default privileges (ALTER DEFAULT PRIVILEGES) are not dumped. The steep_repl schema is never included.`

  static override examples = [
    '<%= config.bin %> schema dump -d postgres://postgres@localhost/app > app-schema.sql',
    '<%= config.bin %> schema dump -d postgres://postgres@localhost/app --section pre-data --schema app',
    '<%= config.bin %> schema dump -d "host=db1 dbname=app" --exclude-schema audit --no-owner --no-privileges --file schema.sql',
    '<%= config.bin %> schema dump -d postgres://postgres@localhost/app --json',
  ]

  static override flags = {
    db: dbFlag,
    ...schemaFilterFlags,
    section: Flags.string({summary: 'Only this section (repeat for both; default both).', options: ['pre-data', 'post-data'], multiple: true}),
    'no-owner': Flags.boolean({summary: 'Leave out ALTER … OWNER TO (the target user owns everything).'}),
    'no-privileges': Flags.boolean({summary: 'Leave out GRANT and REVOKE.'}),
    file: Flags.string({char: 'f', summary: 'Write the SQL to this file instead of stdout.', helpValue: 'FILE'}),
  }

  async run(): Promise<SchemaDdl & {sections: Section[]}> {
    const conn = await this.connection(this.flags.db)
    const sections = (this.flags.section?.length ? ['pre-data', 'post-data'].filter((s) => this.flags.section!.includes(s)) : ['pre-data', 'post-data']) as Section[]
    const ddl = await withClient(conn, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        return await extractSchemaDdl(client, {
          schemas: this.flags.schema,
          excludeSchemas: this.flags['exclude-schema'],
          owners: !this.flags['no-owner'],
          privileges: !this.flags['no-privileges'],
          lockTables: true,
        })
      } finally {
        await client.query('ROLLBACK').catch(() => {})
      }
    })
    for (const s of ddl.skipped) this.note(`warning: not dumped: ${s.kind} ${s.schema === null ? '' : s.schema + '.'}${s.name}: ${s.reason}`)
    for (const c of ddl.cycleBreaks) this.note(`warning: dependency cycle broken at ${c}`)
    const sql = renderDdl(ddl, {sections})
    if (this.flags.file) {
      writeFileSync(this.flags.file, sql)
      this.note(`wrote ${ddl.preData.length} pre-data and ${ddl.postData.length} post-data statements to ${this.flags.file}`)
    } else if (!this.jsonEnabled()) process.stdout.write(sql)
    return {
      ...ddl,
      sections,
      preData: sections.includes('pre-data') ? ddl.preData : [],
      postData: sections.includes('post-data') ? ddl.postData : [],
      sql: {preData: sections.includes('pre-data') ? ddl.sql.preData : '', postData: sections.includes('post-data') ? ddl.sql.postData : ''},
    }
  }
}
