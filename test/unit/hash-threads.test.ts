import {createHash, randomBytes} from 'node:crypto'
import {mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {HashThreads} from '../../src/lib/snapshot/hash-threads.js'
import {fileIdentity, verifyFiles} from '../../src/lib/snapshot/manifest-io.js'
import type {Manifest} from '../../src/lib/snapshot/manifest.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-hash-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

describe('hashing on worker threads', () => {
  it('gives the same SHA-256 and size as hashing here, for empty, small and multi-buffer files; a missing file rejects with its code', async () => {
    const files = {empty: Buffer.alloc(0), small: Buffer.from('abc'), big: randomBytes(3 * 1024 * 1024 + 17)}
    for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data)
    const threads = new HashThreads(2)
    try {
      const got = await Promise.all(Object.keys(files).map((n) => threads.hash(path.join(dir, n))))
      expect(got).toEqual(Object.values(files).map((d) => ({sha256: sha(d), bytes: d.length})))
      await expect(threads.hash(path.join(dir, 'nope'))).rejects.toMatchObject({code: 'ENOENT'})
      // Still usable after a failure.
      expect(await threads.hash(path.join(dir, 'small'))).toEqual({sha256: sha(files.small), bytes: 3})
    } finally {
      await threads.close()
    }
  })

  it('verifyFiles above the threads threshold finds the one tampered part among good ones', async () => {
    const parts = Array.from({length: 5}, (_, i) => ({file: `data/p${i}.copy`, data: randomBytes(8 * 1024 * 1024)}))
    const schema = {file: 'schema/pre.sql', data: Buffer.from('CREATE TABLE t ();\n')}
    for (const f of [...parts, schema]) {
      mkdirSync(path.join(dir, path.dirname(f.file)), {recursive: true})
      writeFileSync(path.join(dir, f.file), f.data)
    }
    const entry = (f: {file: string; data: Buffer}) => ({file: f.file, bytes: f.data.length, sha256: sha(f.data)})
    const m = {
      schemaFiles: {preData: entry(schema), postData: entry(schema), postDataPlan: entry(schema)},
      tables: [{parts: parts.map((p) => ({...entry(p), fileBytes: p.data.length}))}],
    } as unknown as Manifest
    expect(await verifyFiles(dir, m, 2)).toMatchObject({ok: true, files: 8, bytes: 40 * 1024 * 1024 + 3 * schema.data.length})
    const bad = Buffer.from(parts[3]!.data)
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1
    writeFileSync(path.join(dir, parts[3]!.file), bad)
    const r = await verifyFiles(dir, m, 2)
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual([expect.objectContaining({file: 'data/p3.copy', problem: 'checksum'})])
  })

  it('verifyFiles gives the identity of each settled file it hashed, and none for a file written in the last seconds (racy: apply hashes it again)', async () => {
    const sub = mkdtempSync(path.join(dir, 'ident-'))
    const old = {file: 'data/old.copy', data: Buffer.from('1\tone\n')}
    const fresh = {file: 'data/fresh.copy', data: Buffer.from('2\ttwo\n')}
    const schema = {file: 'schema/pre.sql', data: Buffer.from('CREATE TABLE t ();\n')}
    const write = (f: {file: string; data: Buffer}) => {
      mkdirSync(path.join(sub, path.dirname(f.file)), {recursive: true})
      writeFileSync(path.join(sub, f.file), f.data)
    }
    write(old)
    write(schema)
    await new Promise((r) => setTimeout(r, 3200))
    write(fresh)
    const entry = (f: {file: string; data: Buffer}) => ({file: f.file, bytes: f.data.length, sha256: sha(f.data)})
    const m = {
      schemaFiles: {preData: entry(schema), postData: entry(schema), postDataPlan: entry(schema)},
      tables: [{parts: [old, fresh].map((p) => ({...entry(p), fileBytes: p.data.length}))}],
    } as unknown as Manifest
    const r = await verifyFiles(sub, m, 2)
    expect(r.ok).toBe(true)
    expect(r.identities.get(old.file)).toBe(fileIdentity(statSync(path.join(sub, old.file), {bigint: true})))
    expect(r.identities.has(fresh.file)).toBe(false)
    // A file rewritten with the same bytes has another identity.
    writeFileSync(path.join(sub, old.file), old.data)
    expect(fileIdentity(statSync(path.join(sub, old.file), {bigint: true}))).not.toBe(r.identities.get(old.file))
  })
})
