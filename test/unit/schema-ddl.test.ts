import {describe, expect, it} from 'vitest'
import type {CatalogModel, CatColumn, CatConstraint, CatIndex, CatRelation, CatSequence} from '../../src/lib/schema/catalog.js'
import {buildDdl, postDataWaves, renderAcl, renderDdl, sqlComment} from '../../src/lib/schema/ddl.js'

const model = (p: Partial<CatalogModel>): CatalogModel => ({
  serverVersionNum: 150000,
  database: 'db',
  schemas: [{oid: '100', name: 'app', owner: 'owner', comment: null, acl: null}],
  extensions: [],
  extensionMembers: new Map(),
  types: [],
  functions: [],
  sequences: [],
  relations: [],
  indexes: [],
  triggers: [],
  rules: [],
  policies: [],
  statistics: [],
  dependencies: [],
  skipped: [],
  ...p,
})

const column = (num: number, name: string, type: string, p: Partial<CatColumn> = {}): CatColumn => ({
  num,
  name,
  type,
  notNull: false,
  defaultOid: null,
  default: null,
  identity: '',
  identitySequence: null,
  generated: '',
  collation: null,
  isLocal: true,
  inhCount: 0,
  comment: null,
  statistics: null,
  storage: null,
  compression: null,
  options: null,
  acl: null,
  ...p,
})

const table = (oid: string, name: string, p: Partial<CatRelation> = {}): CatRelation => ({
  oid,
  schema: 'app',
  name,
  kind: 'r',
  rowTypeOid: null,
  rowArrayOid: null,
  returnRuleOid: null,
  unlogged: false,
  owner: 'owner',
  comment: null,
  acl: null,
  reloptions: null,
  toastOptions: null,
  am: null,
  partitionKey: null,
  partitionOf: null,
  partitionBound: null,
  inherits: [],
  replident: 'd',
  rowSecurity: false,
  forceRowSecurity: false,
  viewDef: null,
  populated: true,
  columns: [],
  constraints: [],
  ...p,
})

const constraint = (oid: string, name: string, type: CatConstraint['type'], def: string, p: Partial<CatConstraint> = {}): CatConstraint => ({
  oid,
  name,
  type,
  def,
  validated: true,
  isLocal: true,
  noInherit: false,
  deferrable: false,
  deferred: false,
  column: null,
  indexOid: null,
  hasParent: false,
  comment: null,
  ...p,
})

const index = (oid: string, name: string, tableOid: string, def: string, p: Partial<CatIndex> = {}): CatIndex => ({
  oid,
  schema: 'app',
  name,
  tableOid,
  def,
  am: 'btree',
  valid: true,
  clustered: false,
  replident: false,
  constraintOid: null,
  parentOid: null,
  comment: null,
  statistics: [],
  ...p,
})

const sequence = (oid: string, name: string, p: Partial<CatSequence> = {}): CatSequence => ({
  oid,
  schema: 'app',
  name,
  unlogged: false,
  owner: 'owner',
  comment: null,
  acl: null,
  ownedBy: null,
  dataType: 'bigint',
  start: '1',
  increment: '1',
  min: '1',
  max: '9223372036854775807',
  cache: '1',
  cycle: false,
  ...p,
})

describe('DDL from a catalog model', () => {
  it('orders by pg_depend: a sequence before the table whose default uses it, OWNED BY after the table', () => {
    const ddl = buildDdl(
      model({
        sequences: [sequence('300', 'a_id_seq', {ownedBy: {tableOid: '200', schema: 'app', table: 'a', column: 'id'}})],
        relations: [table('200', 'a', {columns: [column(1, 'id', 'bigint', {notNull: true, default: "nextval('app.a_id_seq'::regclass)", defaultOid: '201'})]})],
        dependencies: [
          {from: 'pg_attrdef:201', fromSub: 0, to: 'pg_class:300', toSub: 0, type: 'n'},
          {from: 'pg_class:300', fromSub: 0, to: 'pg_class:200', toSub: 1, type: 'a'},
          {from: 'pg_class:200', fromSub: 0, to: 'pg_namespace:100', toSub: 0, type: 'n'},
        ],
      }),
    )
    expect(ddl.preData.map((s) => s.kind)).toEqual(['schema', 'sequence', 'table', 'sequence owned by'])
    expect(ddl.preData[2]!.sql).toContain(`"id" bigint DEFAULT nextval('app.a_id_seq'::regclass) NOT NULL`)
    expect(ddl.preData[3]!.sql).toBe('ALTER SEQUENCE "app"."a_id_seq" OWNED BY "app"."a"."id";')
    expect(ddl.cycleBreaks).toEqual([])
  })

  it('puts a function used by a table default before the table, and a SQL-body function reading a table after it', () => {
    const ddl = buildDdl(
      model({
        functions: [
          {oid: '400', schema: 'app', name: 'aaa_default', kind: 'f', identityArgs: '', def: 'CREATE OR REPLACE FUNCTION app.aaa_default() ...', owner: 'o', comment: null, acl: null},
          {oid: '401', schema: 'app', name: 'aab_counter', kind: 'f', identityArgs: '', def: 'CREATE OR REPLACE FUNCTION app.aab_counter() ...', owner: 'o', comment: null, acl: null},
        ],
        relations: [table('200', 't', {columns: [column(1, 'v', 'integer', {default: 'app.aaa_default()', defaultOid: '201'})]})],
        dependencies: [
          {from: 'pg_attrdef:201', fromSub: 0, to: 'pg_proc:400', toSub: 0, type: 'n'},
          {from: 'pg_proc:401', fromSub: 0, to: 'pg_class:200', toSub: 0, type: 'n'},
        ],
      }),
    )
    const names = ddl.preData.map((s) => s.name)
    expect(names.indexOf('aaa_default()')).toBeLessThan(names.indexOf('t'))
    expect(names.indexOf('t')).toBeLessThan(names.indexOf('aab_counter()'))
  })

  it('splits post-data into waves: index builds, USING INDEX constraints, index attach, foreign keys', () => {
    const parent = table('200', 'p', {
      kind: 'p',
      partitionKey: 'RANGE (id)',
      columns: [column(1, 'id', 'integer', {notNull: true})],
      constraints: [constraint('210', 'p_pkey', 'p', 'PRIMARY KEY (id)', {indexOid: '220'})],
    })
    const child = table('201', 'p1', {
      partitionOf: '200',
      partitionBound: 'FOR VALUES FROM (0) TO (10)',
      columns: [column(1, 'id', 'integer', {notNull: true, isLocal: false, inhCount: 1})],
      constraints: [constraint('211', 'p1_pkey', 'p', 'PRIMARY KEY (id)', {indexOid: '221'})],
    })
    const ref = table('202', 'r', {
      columns: [column(1, 'pid', 'integer')],
      constraints: [constraint('212', 'r_pid_fkey', 'f', 'FOREIGN KEY (pid) REFERENCES app.p(id)')],
    })
    const ddl = buildDdl(
      model({
        relations: [parent, child, ref],
        indexes: [
          index('220', 'p_pkey', '200', 'CREATE UNIQUE INDEX p_pkey ON ONLY app.p USING btree (id)', {constraintOid: '210'}),
          index('221', 'p1_pkey', '201', 'CREATE UNIQUE INDEX p1_pkey ON app.p1 USING btree (id)', {constraintOid: '211', parentOid: '220'}),
        ],
        dependencies: [{from: 'pg_constraint:212', fromSub: 0, to: 'pg_class:220', toSub: 0, type: 'n'}],
      }),
    )
    expect(ddl.preData.map((s) => `${s.kind}:${s.name}`)).toEqual(['schema:app', 'table:p', 'table:p1', 'table:r', 'attach partition:p1'])
    expect(ddl.preData.find((s) => s.kind === 'table' && s.name === 'p1')!.sql).toContain('"id" integer NOT NULL')
    expect(ddl.preData.at(-1)!.sql).toBe('ALTER TABLE ONLY "app"."p" ATTACH PARTITION "app"."p1" FOR VALUES FROM (0) TO (10);')
    const waves = postDataWaves(ddl)
    expect(waves.map((w) => w.map((s) => `${s.kind}:${s.name}`))).toEqual([
      ['index:p1_pkey', 'constraint:p_pkey'],
      ['constraint:p1_pkey'],
      ['attach index:p1_pkey'],
      ['foreign key:r_pid_fkey'],
    ])
    const sql = ddl.postData.map((s) => s.sql)
    expect(sql).toContain('ALTER TABLE ONLY "app"."p1" ADD CONSTRAINT "p1_pkey" PRIMARY KEY USING INDEX "p1_pkey";')
    expect(sql).toContain('ALTER TABLE ONLY "app"."p" ADD CONSTRAINT "p_pkey" PRIMARY KEY (id);')
    expect(sql).toContain('ALTER INDEX "app"."p_pkey" ATTACH PARTITION "app"."p1_pkey";')
    // the foreign key waits for the constraint that owns the referenced index
    expect(ddl.postData.find((s) => s.kind === 'foreign key')!.dependsOn).toContain('constraint:210')
  })

  it('moves a pre-data statement that needs a post-data one (a view grouping by a primary key) to post-data', () => {
    const t = table('200', 't', {columns: [column(1, 'id', 'integer', {notNull: true})], constraints: [constraint('210', 't_pkey', 'p', 'PRIMARY KEY (id)', {indexOid: '220'})]})
    const v = table('300', 'v', {kind: 'v', viewDef: ' SELECT t.id FROM app.t GROUP BY t.id;', returnRuleOid: '301'})
    const ddl = buildDdl(
      model({
        relations: [t, v],
        indexes: [index('220', 't_pkey', '200', 'CREATE UNIQUE INDEX t_pkey ON app.t USING btree (id)', {constraintOid: '210'})],
        dependencies: [
          {from: 'pg_rewrite:301', fromSub: 0, to: 'pg_class:200', toSub: 0, type: 'n'},
          {from: 'pg_rewrite:301', fromSub: 0, to: 'pg_constraint:210', toSub: 0, type: 'n'},
        ],
      }),
    )
    expect(ddl.preData.map((s) => s.name)).toEqual(['app', 't'])
    expect(ddl.postData.map((s) => `${s.kind}:${s.name}`)).toEqual(['index:t_pkey', 'constraint:t_pkey', 'view:v'])
    expect(ddl.postData.at(-1)!.sql).toMatch(/^CREATE VIEW "app"."v" AS\nSELECT t.id FROM app.t GROUP BY t.id;/)
  })

  it('quotes every identifier and keeps line breaks out of comment lines', () => {
    const nasty = 'Order "Items"\nDROP TABLE x;'
    const ddl = buildDdl(
      model({
        schemas: [{oid: '100', name: 'Sch.ema', owner: 'Own"er', comment: "it's", acl: null}],
        relations: [table('200', nasty, {schema: 'Sch.ema', columns: [column(1, 'select', 'integer', {comment: 'a\nb'})]})],
      }),
    )
    const sql = renderDdl(ddl)
    expect(sql).toContain('CREATE TABLE "Sch.ema"."Order ""Items""\nDROP TABLE x;" (\n    "select" integer\n);')
    expect(sql).toContain('ALTER SCHEMA "Sch.ema" OWNER TO "Own""er";')
    expect(sql).toContain(`COMMENT ON SCHEMA "Sch.ema" IS 'it''s';`)
    expect(sql).toContain(`COMMENT ON COLUMN "Sch.ema"."Order ""Items""\nDROP TABLE x;"."select" IS 'a\nb';`)
    expect(sql).toContain('\n-- table Sch.ema.Order "Items"\\u000aDROP TABLE x;\nCREATE TABLE')
    expect(sqlComment('a\nb')).toBe('-- a\\u000ab')
    expect(buildDdl(model({relations: [table('200', 't')]}), {owners: false}).preData.every((s) => !s.sql.includes('OWNER TO'))).toBe(true)
  })

  it('renders identity, generated, collation, not-null constraint names (18) and inherited columns', () => {
    const cols = [
      column(1, 'id', 'bigint', {
        notNull: true,
        identity: 'a',
        identitySequence: {oid: '9', schema: 'app', name: 't_id_seq', dataType: 'bigint', start: '5', increment: '2', min: '1', max: '100', cache: '1', cycle: true},
      }),
      column(2, 'name', 'text', {collation: 'pg_catalog."C"', notNull: true}),
      column(3, 'lower', 'text', {generated: 's', default: 'lower(name)'}),
      column(4, 'inh', 'integer', {isLocal: false, inhCount: 1, default: '7', notNull: true}),
    ]
    const t = table('200', 't', {columns: cols, inherits: ['150'], constraints: [constraint('260', 'nn_name', 'n', 'NOT NULL name', {column: 2})]})
    const parent = table('150', 'base', {columns: [column(1, 'inh', 'integer')]})
    const pg15 = buildDdl(model({relations: [parent, t]})).preData.find((s) => s.name === 't')!.sql
    expect(pg15).toContain('"id" bigint GENERATED ALWAYS AS IDENTITY (\n        SEQUENCE NAME "app"."t_id_seq"\n        START WITH 5\n')
    expect(pg15).toContain('CYCLE\n    ) NOT NULL')
    expect(pg15).toContain('"name" text COLLATE pg_catalog."C" NOT NULL')
    expect(pg15).toContain('"lower" text GENERATED ALWAYS AS (lower(name)) STORED')
    expect(pg15).not.toContain('"inh" integer')
    expect(pg15).toContain('INHERITS ("app"."base");')
    expect(pg15).toContain('ALTER TABLE ONLY "app"."t" ALTER COLUMN "inh" SET DEFAULT 7;')
    expect(pg15).toContain('ALTER TABLE ONLY "app"."t" ALTER COLUMN "inh" SET NOT NULL;')
    const pg18 = buildDdl(model({serverVersionNum: 180000, relations: [parent, t]})).preData.find((s) => s.name === 't')!.sql
    expect(pg18).toContain('"name" text COLLATE pg_catalog."C" CONSTRAINT "nn_name" NOT NULL')
  })

  it('lists skipped objects and invalid indexes in the rendered header', () => {
    const ddl = buildDdl(
      model({
        relations: [table('200', 't', {columns: [column(1, 'a', 'int')]})],
        indexes: [index('220', 'broken', '200', 'CREATE INDEX broken ON app.t USING btree (a)', {valid: false})],
        skipped: [{kind: 'collation', schema: 'app', name: 'de_ci', reason: 'not supported by schema dump'}],
      }),
    )
    expect(ddl.postData).toEqual([])
    const sql = renderDdl(ddl)
    expect(sql).toContain('-- WARNING: not dumped: collation app.de_ci: not supported by schema dump')
    expect(sql).toContain('-- WARNING: not dumped: index app.broken: invalid index')
  })

  it('rebuilds an ACL exactly, in order, from aclexplode entries', () => {
    expect(renderAcl('TABLE', '"app"."t"', 'own', null)).toBe('')
    const acl = [
      {g: 'own', p: 'SELECT', o: false},
      {g: 'own', p: 'UPDATE', o: false},
      {g: 'Read"er', p: 'SELECT', o: true},
      {g: null, p: 'SELECT', o: false},
    ]
    expect(renderAcl('TABLE', '"app"."t"', 'own', acl)).toBe(
      [
        '',
        'REVOKE ALL ON TABLE "app"."t" FROM PUBLIC;',
        'REVOKE ALL ON TABLE "app"."t" FROM "own";',
        'GRANT SELECT, UPDATE ON TABLE "app"."t" TO "own";',
        'GRANT SELECT ON TABLE "app"."t" TO "Read""er" WITH GRANT OPTION;',
        'GRANT SELECT ON TABLE "app"."t" TO PUBLIC;',
      ].join('\n'),
    )
    expect(renderAcl('TABLE', '"app"."t"', 'own', [{g: 'r', p: 'SELECT', o: false}, {g: 'r', p: 'UPDATE', o: false}], 'c')).toBe('\nGRANT SELECT ("c"), UPDATE ("c") ON TABLE "app"."t" TO "r";')
    const t = table('200', 't', {acl: [{g: 'r', p: 'SELECT', o: false}]})
    expect(buildDdl(model({relations: [t]})).preData.at(-1)!.sql).toContain('GRANT SELECT ON TABLE "app"."t" TO "r";')
    expect(buildDdl(model({relations: [t]}), {privileges: false}).preData.at(-1)!.sql).not.toContain('GRANT')
  })
})
