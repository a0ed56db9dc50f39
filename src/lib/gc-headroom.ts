// Headroom for V8's old generation while COPY data streams through the process.
//
// After each full (mark-compact) GC, V8 sets the next one's trigger from the live heap, which in
// this CLI is small (~9 MB of code, zod schemas and connections). Streaming a compressed COPY keeps
// allocating short-lived objects that V8 counts against that trigger, so with ~10 MB of slack a full
// GC ran every 100-150 ms: 25-50 mark-compacts per generate of the bench database at gzip level 1,
// their background marking ~1 s of CPU on 2 cores. Until the first full GC V8 uses a much larger
// initial limit, which is why `node --initial-old-space-size=128` ends them; a CLI cannot pass that
// flag to itself (V8 reads it when the heap is created).
//
// The same effect without a flag: 16 MB of live heap that costs the marker next to nothing raises
// the limit's base, and with it the slack above the trigger. It is an array of 2M empty slots (8
// bytes each, Node.js has no pointer compression; every slot holds V8's one read-only "hole"):
// allocating it takes ~15 ms, filling it with numbers would take ~45 ms. Callers reserve it after
// their COPY is on its way, so the server works meanwhile.
//
// Measured on the bench database (2 vCPU, three alternating runs each): one mark-compact per
// generate; gzip level 1 generate's client CPU 7.7 → 6.3 s and wall time 7.4 → 6.5 s (medians);
// uncompressed, which had one mark-compact before, unchanged; peak RSS +10-18 MB. Apply of that
// snapshot: 30 mark-compacts down to 2, the client's user CPU 4.5 → 3.1 s, peak RSS 125 → 160 MB
// (the limit is 250 MB). 8 MB was not enough for apply (31 mark-compacts).
//
// Young-generation collections are single-threaded from then on. Every 32 MB of buffers the COPY
// data passes through sets one off ("external memory pressure"), and it finds next to nothing alive
// (~10 KB): 0.5 ms on the main thread alone. In parallel (V8's default) the main thread waits for
// helper tasks that, with the cores busy with the server's COPY backends and zlib, get a core late:
// 3-8 ms per collection, 40-65 of them per generate of the bench database, each stalling the thread
// that reads the sockets. The flag is read at each collection, so setting it at run time is safe.

import {setFlagsFromString} from 'node:v8'

const HEADROOM_BYTES = 16 * 1024 * 1024

let headroom: number[] | undefined

/** Reserve the headroom (once per process; it stays for the process' life). */
export function reserveGcHeadroom(): void {
  if (headroom) return
  headroom = new Array<number>(HEADROOM_BYTES / 8)
  setFlagsFromString('--no-parallel-scavenge')
}

/** For tests: whether it is reserved, and its size in bytes. */
export function gcHeadroomBytes(): number {
  return headroom ? headroom.length * 8 : 0
}
