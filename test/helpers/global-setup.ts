// Starts the shared PostgreSQL server for the run (major from PG_MAJOR, default 18) and hands its
// coordinates to the test files. Files that need more servers start them with test/helpers/pg.ts.
// Unit-only runs (every selected file under test/unit) skip the server.

import {existsSync} from 'node:fs'
import type {TestProject} from 'vitest/node'
import {type ServerHandle, startTestServer} from './servers.js'

let handle: ServerHandle | undefined

declare module 'vitest' {
  export interface ProvidedContext {
    pg: {url: string; socket: string; port: number; password: string; major: number; dataDir: string} | null
  }
}

export async function setup(project: TestProject): Promise<void> {
  const argv = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run')
  const unitOnly = argv.length > 0 && argv.every((a) => a.includes('test/unit'))
  if (unitOnly) {
    project.provide('pg', null)
    return
  }
  if (!existsSync(new URL('../../dist/commands', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it) before the integration tests')
  }
  handle = await startTestServer()
  project.provide('pg', handle.info)
}

export async function teardown(): Promise<void> {
  await handle?.stop()
}
