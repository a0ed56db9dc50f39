// Flags shared by the merge commands (src/commands/merge/*).

import {Flags} from '@oclif/core'

export const nodeFlags = {
  'node-a': Flags.string({
    summary: 'Node A: a postgres:// URL, a key=value string, or a name from the config file.',
    description: 'Node A also keeps the merge record and audit (steep_repl.merges, steep_repl.merge_audit_log).',
    helpValue: 'CONN',
    required: true,
  }),
  'node-b': Flags.string({summary: 'Node B: a postgres:// URL, a key=value string, or a name from the config file.', helpValue: 'CONN', required: true}),
  tables: Flags.string({
    summary: 'Comma-separated tables to compare: schema.table, or table for public.table.',
    description: 'Quote names with capitals or dots: "My Schema"."Orders".',
    helpValue: 'LIST',
    required: true,
  }),
}

export const tuningFlags = {
  'block-rows': Flags.integer({summary: 'Rows per top-level block hashed on both nodes (default 64).', min: 1, helpGroup: 'TUNING'}),
  'leaf-rows': Flags.integer({summary: 'Differing ranges of at most this many rows are compared row by row (default 8).', min: 1, helpGroup: 'TUNING'}),
  fanout: Flags.integer({summary: 'Parts a differing range is cut into per level (default 8).', min: 2, helpGroup: 'TUNING'}),
}

export function tuningFrom(flags: {'block-rows'?: number; 'leaf-rows'?: number; fanout?: number}) {
  return {blockRows: flags['block-rows'], leafRows: flags['leaf-rows'], fanout: flags.fanout}
}
