// walrus rule settings from the config file's walrus: section; flags win over it.

import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {runCli} from '../helpers/cli.js'

const lines = [
  '{"time":"2026-01-01T00:00:00Z","requested":12,"stats_reset":null,"max_wal_size_mb":32}',
  '{"time":"2026-01-01T00:00:30Z","requested":44,"stats_reset":null}',
].join('\n')

describe('walrus settings from the config file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'steep-walrus-cfg-'))
  const cfg = path.join(dir, 'config.yaml')
  writeFileSync(cfg, 'walrus:\n  max: 512MB\n  min: 32MB\n  cooldown: 0\n')

  it('caps at the configured max', async () => {
    const r = await runCli(['walrus', 'simulate', '--samples', '-', '--interval', '30s', '--config', cfg, '--json'], {input: lines})
    expect(r.code, r.stderr).toBe(0)
    expect(r.json()).toMatchObject({finalMb: 512, decisions: [{outcome: 'baseline'}, {outcome: 'capped', target_mb: 512}]})
  })

  it('a flag wins over the config file', async () => {
    const r = await runCli(['walrus', 'simulate', '--samples', '-', '--interval', '30s', '--config', cfg, '--max', '4GB', '--json'], {input: lines})
    expect(r.json()).toMatchObject({finalMb: 1056})
  })

  it('a bad value names the file and the key', async () => {
    const bad = path.join(dir, 'bad.yaml')
    writeFileSync(bad, 'walrus:\n  threshold: 0\n')
    const r = await runCli(['walrus', 'simulate', '--samples', '-', '--config', bad], {input: lines})
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/bad\.yaml: key "walrus\.threshold"/)
  })
})
