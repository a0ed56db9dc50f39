// SHA-256 of whole files on worker threads. Verifying a snapshot before apply hashes every byte
// of it while the target waits; node's hash runs on the thread that calls update(), so async
// reads alone leave every core but one idle. Each worker reads and hashes the files it is given
// by path: no file byte crosses between threads.

import {availableParallelism} from 'node:os'
import {Worker} from 'node:worker_threads'

// The worker's code, evaluated as CommonJS (no separate file to ship or resolve from dist/).
const WORKER = `
const {parentPort} = require('node:worker_threads')
const {createHash} = require('node:crypto')
const {openSync, readSync, closeSync} = require('node:fs')
const buf = Buffer.allocUnsafe(1 << 20)
parentPort.on('message', ({id, file}) => {
  try {
    const fd = openSync(file, 'r')
    const hash = createHash('sha256')
    let bytes = 0
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
        hash.update(buf.subarray(0, n))
        bytes += n
      }
    } finally {
      closeSync(fd)
    }
    parentPort.postMessage({id, sha256: hash.digest('hex'), bytes})
  } catch (err) {
    parentPort.postMessage({id, error: {message: err.message, code: err.code}})
  }
})
`

interface Reply {
  id: number
  sha256?: string
  bytes?: number
  error?: {message: string; code?: string}
}

/** A fixed set of hashing threads; hash() queues a file on the least busy one. close() when done. */
export class HashThreads {
  private readonly workers: Array<{worker: Worker; busy: number}>
  private readonly pending = new Map<number, {resolve: (r: {sha256: string; bytes: number}) => void; reject: (e: Error) => void}>()
  private nextId = 0

  constructor(threads: number) {
    this.workers = Array.from({length: Math.max(1, threads)}, () => {
      // No inherited execArgv: under --input-type=module the eval'd CommonJS would be read as ESM.
      const w = {worker: new Worker(WORKER, {eval: true, execArgv: []}), busy: 0}
      w.worker.on('message', (r: Reply) => {
        w.busy--
        const p = this.pending.get(r.id)
        if (!p) return
        this.pending.delete(r.id)
        if (r.error) p.reject(Object.assign(new Error(r.error.message), {code: r.error.code}))
        else p.resolve({sha256: r.sha256!, bytes: r.bytes!})
      })
      w.worker.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err)
        this.pending.clear()
      })
      return w
    })
  }

  /** How many threads are worth it here: one per core, at most `limit`. */
  static size(limit: number): number {
    return Math.max(1, Math.min(limit, availableParallelism()))
  }

  hash(file: string): Promise<{sha256: string; bytes: number}> {
    const w = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a))
    const id = this.nextId++
    w.busy++
    return new Promise((resolve, reject) => {
      this.pending.set(id, {resolve, reject})
      w.worker.postMessage({id, file})
    })
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()))
  }
}
