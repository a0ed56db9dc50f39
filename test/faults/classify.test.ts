// The exit code of a connection lost mid-command (the fix the fault catalogue's restart cases led to):
// pure checks of BaseCommand's classification, next to the end-to-end cases in snapshot-faults.

import {describe, expect, it} from 'vitest'
import {classify} from '../../src/lib/base-command.js'

const pgError = (code: string, message: string) => Object.assign(new Error(message), {code, severity: 'FATAL'})

describe('classify: connection lost mid-command', () => {
  it.each([
    ['a terminated backend (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['a crash restart (57P02)', pgError('57P02', 'terminating connection because of crash of another server process')],
    ['a server starting up (57P03)', pgError('57P03', 'the database system is starting up')],
    ['node-postgres after the socket died', new Error('Client has encountered a connection error and is not queryable')],
    ['a reset socket', Object.assign(new Error('read ECONNRESET'), {code: 'ECONNRESET', syscall: 'read'})],
    ['Connection terminated', new Error('Connection terminated unexpectedly')],
  ])('%s → exit 6 "lost the connection"', (_name, err) => {
    const c = classify(err)
    expect(c).toMatchObject({code: 'connection', exitCode: 6})
    expect(c.message).toMatch(/^lost the connection to the server: /)
  })

  it.each([
    ['a missing file', Object.assign(new Error("ENOENT: no such file or directory, open '/x/manifest.json'"), {code: 'ENOENT', syscall: 'open', path: '/x/manifest.json'})],
    ['a full disk', Object.assign(new Error('ENOSPC: no space left on device, write'), {code: 'ENOSPC', syscall: 'write'})],
    ['a unique violation', pgError('23505', 'duplicate key value violates unique constraint "t_pkey"')],
  ])('%s → exit 1, not a connection error', (_name, err) => {
    expect(classify(err).exitCode).toBe(1)
  })
})
