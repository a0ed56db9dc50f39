// Test-only failpoints, for the fault catalogue (test/faults/): a moment too short to catch from
// outside (the manifest being written takes a millisecond) is made to last until the test kills the
// process. STEEP_REPL_FAILPOINT=<name>[,<name>…] makes the process stop at each named point: it
// prints "failpoint <name>: paused (pid N)" on stderr and waits until it is killed. Without the
// variable (always, outside the tests) `armed` is false and `failpoint` returns at once.
//
// Points (used by test/faults/phase-kills.test.ts and more-phase-kills.test.ts; generate:schema also by
// test/integration/node-maintenance.test.ts, with --timeout):
// - generate:schema — snapshot generate holds the schema extraction's locks (pg_dump's ACCESS SHARE
//   on every table and view) and has read no DDL yet. From outside, only ACCESS EXCLUSIVE could hold
//   it there, and that lock takes a transaction id, which the slot creation before waits for.
// - generate:manifest — snapshot generate has written the first half of manifest.json under its
//   temporary name (manifest.json.partial) and pauses before the rest and the rename.
// - generate:sequences — snapshot generate has written every data part and the schema files and
//   read the sequences, its slot's snapshot still open, and has not started the manifest. Reading a
//   sequence takes ACCESS SHARE, which only ACCESS EXCLUSIVE blocks, and that lock takes a
//   transaction id, which the slot creation waits for; taken later, it would race the few
//   milliseconds between the slot and the sequences (test/faults/more-phase-kills.test.ts).
// - apply:verify — snapshot apply has checked the files' sizes and checksums (no database lock is
//   involved: it reads files) and has not connected to the target for the apply yet
//   (test/faults/more-phase-kills.test.ts).

export function armed(name: string): boolean {
  const v = process.env.STEEP_REPL_FAILPOINT
  return Boolean(v) && v!.split(',').some((s) => s.trim() === name)
}

/**
 * Pauses at `name` when it is armed, until the test kills the process or `signal` aborts (a cancel
 * or --timeout of the job: then it throws the abort reason, as the work it stands in for would);
 * else returns.
 */
export async function failpoint(name: string, signal?: AbortSignal): Promise<void> {
  if (!armed(name)) return
  process.stderr.write(`failpoint ${name}: paused (pid ${process.pid})\n`)
  // A timer keeps the event loop alive whatever else is open.
  const keepAlive = setInterval(() => {}, 1 << 30)
  try {
    await new Promise<never>((_, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      signal?.addEventListener('abort', () => reject(signal.reason), {once: true})
    })
  } finally {
    clearInterval(keepAlive)
  }
}
