// What merge functions report progress to. A structural subset of the job machinery's
// ProgressReporter (src/direct/registry.ts of the jobs capability), so a job handler can pass
// ctx.progress straight in; commands that run in-process pass a small printer or nothing.

export interface MergeProgress {
  plan?(phases: string[]): void
  phase(name: string, totals?: {items?: number | null; rows?: number | null}): void
  item(key: string, opts?: {label?: string; rowsTotal?: number | null}): void
  add(amounts: {rows?: number; bytes?: number}, itemKey?: string): void
  itemDone(key: string, state?: 'done' | 'failed' | 'skipped', error?: string): void
  message(text: string | null): void
}

export const silentProgress: MergeProgress = {
  phase: () => {},
  item: () => {},
  add: () => {},
  itemDone: () => {},
  message: () => {},
}

/** Plain lines (stderr of a command): one when a phase starts, one per finished item, messages. */
export function lineProgress(write: (line: string) => void): MergeProgress {
  return {
    phase: (name) => write(`${name}…`),
    item: () => {},
    add: () => {},
    itemDone: (key, state = 'done', error) => write(`  ${key}: ${state}${error ? ` (${error})` : ''}`),
    message: (text) => {
      if (text) write(`  ${text}`)
    },
  }
}
