// Runs the built CLI (bin/run.js on dist/) as a user would, in a child process, and returns what it
// printed and its exit code. No TTY: the CLI's plain output mode.

import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON (throws if it is not one JSON document). */
  json<T = any>(): T
}

export interface CliOptions {
  env?: Record<string, string | undefined>
  input?: string
  timeoutMs?: number
  /** Drop the caller's PG* variables (default true), so tests do not depend on the shell. */
  cleanEnv?: boolean
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const base: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1'}
  if (opts.cleanEnv !== false) for (const k of Object.keys(base)) if (k.startsWith('PG') || k === 'STEEP_REPL_CONFIG') delete base[k]
  // A config dir of its own, so a developer's ~/.config/steep-repl never leaks into tests.
  base.XDG_CONFIG_HOME = '/nonexistent-steep-test-config'
  const env = {...base, ...opts.env}
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout)
          } catch {
            throw new Error(`stdout is not one JSON document:\n${stdout}\n--- stderr:\n${stderr}`)
          }
        },
      })
    })
    child.stdin.end(opts.input ?? '')
  })
}
