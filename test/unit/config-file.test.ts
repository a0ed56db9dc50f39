import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {defaultConfigPath, loadConfig} from '../../src/lib/connection/config-file.js'
import {ConfigError} from '../../src/lib/errors.js'

const dir = mkdtempSync(path.join(tmpdir(), 'steep-config-'))
function file(name: string, text: string, mode = 0o600): string {
  const f = path.join(dir, name)
  writeFileSync(f, text, {mode})
  return f
}

describe('loadConfig', () => {
  it('uses XDG_CONFIG_HOME, and a missing default file is empty', () => {
    expect(defaultConfigPath({XDG_CONFIG_HOME: '/x'})).toBe('/x/steep-repl/config.yaml')
    expect(loadConfig(undefined, {XDG_CONFIG_HOME: dir})).toMatchObject({exists: false, config: {connections: {}}})
  })

  it('honours STEEP_REPL_CONFIG, and a named file must exist', () => {
    const f = file('a.yaml', 'connections:\n  a:\n    host: h\n')
    expect(loadConfig(undefined, {STEEP_REPL_CONFIG: f}).config.connections.a).toEqual({host: 'h'})
    expect(() => loadConfig(path.join(dir, 'missing.yaml'), {})).toThrow(/missing.yaml: no such file/)
  })

  it.each([
    ['bad-yaml.yaml', 'connections: [\n', /is not valid YAML/],
    ['bad-port.yaml', 'connections:\n  a:\n    port: 99999\n', /key "connections.a.port"/],
    ['bad-key.yaml', 'connections:\n  a:\n    hots: h\n', /key "connections.a": unknown key\(s\) "hots"/],
    ['bad-sslmode.yaml', 'connections:\n  a:\n    sslmode: maybe\n', /key "connections.a.sslmode"/],
    ['bad-top.yaml', 'conections: {}\n', /unknown key\(s\) "conections"/],
    ['bad-both.yaml', 'connections:\n  a:\n    url: postgres://h\n    conninfo: host=h\n', /either url or conninfo/],
  ])('%s names the file and the key', (name, text, re) => {
    const f = file(name, text)
    const err = (() => {
      try {
        loadConfig(f, {})
      } catch (e) {
        return e as Error
      }
    })()
    expect(err).toBeInstanceOf(ConfigError)
    expect(err!.message).toContain(f)
    expect(err!.message).toMatch(re)
  })

  it('refuses a password in a file others can read, without printing it', () => {
    const f = file('open.yaml', 'connections:\n  a:\n    password: topsecret99\n', 0o644)
    expect(() => loadConfig(f, {})).toThrow(/readable by others/)
    try {
      loadConfig(f, {})
    } catch (e) {
      expect((e as Error).message).not.toContain('topsecret99')
    }
  })
})
