// Choosing and driving the progress display of a job: listr2 bars on a terminal, plain lines off a
// terminal or in CI, NDJSON payloads on stderr with --progress-json, nothing with --json alone.
// Progress never goes to stdout: stdout is for the command's result.

import type {ProgressPayload} from '../../direct/progress-schema.js'
import {redact} from '../redact.js'
import {isInteractive} from './output.js'
import {plainLines, plainState} from './progress-format.js'

export type ProgressMode = 'tty' | 'plain' | 'ndjson' | 'silent'

export function chooseProgressMode(o: {json: boolean; progressJson: boolean; interactive: boolean}): ProgressMode {
  if (o.progressJson) return 'ndjson'
  if (o.json) return 'silent'
  return o.interactive ? 'tty' : 'plain'
}

export interface ProgressView {
  readonly mode: ProgressMode
  update(p: ProgressPayload): void
  /** A line of information (not progress); shown in every mode but silent/ndjson where it goes to stderr as is. */
  note(line: string): void
  end(status: string, error?: string | null): Promise<void>
}

export async function createProgressView(mode: ProgressMode, title: string, stream: NodeJS.WriteStream = process.stderr): Promise<ProgressView> {
  const write = (line: string) => stream.write(redact(line) + '\n')
  if (mode === 'tty') {
    const {ListrJobView} = await import('./tasks.js')
    const v = new ListrJobView(title, stream)
    let started = false
    return {
      mode,
      update(p) {
        started = true
        v.update(p)
      },
      note: write,
      async end(status, error) {
        if (started) await v.end(status, error)
      },
    }
  }
  if (mode === 'plain') {
    const s = plainState()
    return {
      mode,
      update(p) {
        for (const line of plainLines(s, p)) write(line)
      },
      note: write,
      async end() {},
    }
  }
  if (mode === 'ndjson') {
    return {
      mode,
      update(p) {
        stream.write(redact(JSON.stringify(p)) + '\n')
      },
      note: write,
      async end() {},
    }
  }
  return {mode, update() {}, note: write, async end() {}}
}

export const defaultInteractive = (): boolean => isInteractive(process.stderr)
