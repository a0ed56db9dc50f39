// Reading a snapshot directory: the manifest (shape and checksum) and the files it names (sizes and
// checksums), without trusting any path in it to stay inside the directory unless checked.

import {readFile, stat} from 'node:fs/promises'
import type {BigIntStats} from 'node:fs'
import path from 'node:path'
import {StateError, UsageError} from '../errors.js'
import {runPool} from './pool.js'
import {checkManifest, isSafeRelativePath, type Manifest, MANIFEST_FILE} from './manifest.js'
import {hashFile} from './streams.js'
import {HashThreads} from './hash-threads.js'

export class ManifestError extends StateError {
  override readonly code = 'bad_manifest'
}

export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new UsageError(`${dir} is not a snapshot directory (no ${MANIFEST_FILE})`, {hint: 'A snapshot that failed or is still being written has no manifest.'})
    }
    throw new UsageError(`cannot read ${file}: ${code ?? (err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ManifestError(`${file} is not valid JSON: ${(err as Error).message}`)
  }
  const r = checkManifest(raw)
  if (!r.ok) {
    throw new ManifestError(`${file} is invalid: ${r.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, {
      hint: 'The snapshot was damaged or edited; generate it again.',
    })
  }
  return r.manifest
}

export interface FileProblem {
  file: string
  problem: 'missing' | 'size' | 'checksum' | 'unsafe path'
  detail: string
}

export interface VerifyResult {
  ok: boolean
  files: number
  bytes: number
  problems: FileProblem[]
  /**
   * Each verified file's identity (device, inode, size, modification and change times) as it was
   * hashed: apply compares the file it opens with it instead of hashing every byte a second time.
   */
  identities: Map<string, string>
}

/**
 * What changes whenever a file's bytes do: any write moves mtime and ctime (ctime cannot be set
 * from user space), a replacement changes the inode. Nanosecond times, from bigint stats.
 */
export const fileIdentity = (st: BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`

/**
 * A file changed this recently is "racy" (as git calls it): file times tick coarsely (a few ms on
 * Linux, up to 2 s on some file systems), so a write right after verification could leave the
 * times as they were. Such a file gets no identity and apply hashes it again as it loads it.
 */
const RACY_NS = 3_000_000_000n

/** From this many bytes on, verifyFiles hashes on worker threads. */
const THREADS_FROM_BYTES = 32 * 1024 * 1024

/** Checks every file the manifest names: present, same size, same SHA-256. */
export async function verifyFiles(dir: string, m: Manifest, parallel = 4, onFile?: (file: string, bytes: number) => void): Promise<VerifyResult> {
  const entries = [
    m.schemaFiles.preData,
    m.schemaFiles.postData,
    m.schemaFiles.postDataPlan,
    ...(m.schemaFiles.clean ? [m.schemaFiles.clean] : []),
    ...m.tables.flatMap((t) => t.parts.map((p) => ({file: p.file, bytes: p.fileBytes, sha256: p.sha256}))),
  ]
  const problems: FileProblem[] = []
  const identities = new Map<string, string>()
  let bytes = 0
  const root = path.resolve(dir)
  // Large snapshots are hashed on worker threads, one per core (up to --parallel); small ones on
  // this thread, where starting the threads would cost more than it saves.
  const total = entries.reduce((a, e) => a + e.bytes, 0)
  const threads = total >= THREADS_FROM_BYTES && HashThreads.size(parallel) > 1 ? new HashThreads(HashThreads.size(parallel)) : null
  try {
    await runPool(entries, parallel, async (e) => {
      const full = path.resolve(root, e.file)
      if (!isSafeRelativePath(e.file) || !full.startsWith(root + path.sep)) {
        problems.push({file: e.file, problem: 'unsafe path', detail: 'escapes the snapshot directory'})
        return
      }
      let before: BigIntStats
      try {
        before = await stat(full, {bigint: true})
        if (before.size !== BigInt(e.bytes)) {
          problems.push({file: e.file, problem: 'size', detail: `${before.size} bytes, manifest says ${e.bytes}`})
          return
        }
      } catch {
        problems.push({file: e.file, problem: 'missing', detail: 'not found'})
        return
      }
      const h = threads ? await threads.hash(full) : await hashFile(full)
      bytes += h.bytes
      onFile?.(e.file, h.bytes)
      if (h.sha256 !== e.sha256) {
        problems.push({file: e.file, problem: 'checksum', detail: `sha256 ${h.sha256.slice(0, 12)}…, manifest says ${e.sha256.slice(0, 12)}…`})
        return
      }
      // Unchanged while it was read: the identity stands for the bytes that were hashed.
      const after = await stat(full, {bigint: true}).catch(() => undefined)
      if (!after || fileIdentity(after) !== fileIdentity(before)) {
        problems.push({file: e.file, problem: 'checksum', detail: 'changed while it was being verified'})
        return
      }
      if (after.ctimeNs < BigInt(Date.now()) * 1_000_000n - RACY_NS) identities.set(e.file, fileIdentity(after))
    })
  } finally {
    await threads?.close()
  }
  problems.sort((a, b) => a.file.localeCompare(b.file))
  return {ok: problems.length === 0, files: entries.length, bytes, problems, identities}
}
