// Every command's --help examples must be commands that work: each example is split like a shell
// would, its command id (or alias) matched, and the rest parsed with that command's own flags and
// arguments by oclif's parser, which rejects unknown flags, missing required flags or arguments,
// values outside a flag's options, and exclusive or dependent flags used wrongly.

import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Flags, Parser, type Command} from '@oclif/core'
import {describe, expect, it} from 'vitest'

const root = fileURLToPath(new URL('../../src/commands/', import.meta.url))

function commandFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e)
    return statSync(p).isDirectory() ? commandFiles(p) : e.endsWith('.ts') ? [p] : []
  })
}

/** Splits a command line as a POSIX shell does (quotes and backslashes; no expansion). */
export function shellSplit(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let inWord = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!
    if (ch === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new Error(`unterminated ' in ${line}`)
      cur += line.slice(i + 1, end)
      i = end
      inWord = true
    } else if (ch === '"') {
      i++
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && /["\\$`]/.test(line[i + 1] ?? '')) i++
        cur += line[i]
      }
      if (i >= line.length) throw new Error(`unterminated " in ${line}`)
      inWord = true
    } else if (ch === '\\') {
      cur += line[++i] ?? ''
      inWord = true
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += ch
      inWord = true
    }
  }
  if (inWord) out.push(cur)
  return out
}

/**
 * The words of the steep-repl command in a pipeline ("cat f | steep-repl x - > out"): the segment
 * that runs steep-repl, without its redirections. Operators must stand alone (as in every example).
 */
export function commandWords(words: string[]): string[] {
  const segments: string[][] = [[]]
  for (const w of words) {
    if (w === '|' || w === '&&' || w === ';') segments.push([])
    else segments.at(-1)!.push(w)
  }
  const ours = segments.filter((s) => s[0] === 'steep-repl')
  if (ours.length !== 1) throw new Error(`one steep-repl command expected in: ${words.join(' ')}`)
  const out: string[] = []
  const seg = ours[0]!
  for (let i = 0; i < seg.length; i++) {
    if (/^(\d?>>?|<)$/.test(seg[i]!)) i++ // redirection and its file
    else out.push(seg[i]!)
  }
  return out
}

type CommandClass = typeof Command & {baseFlags?: Record<string, unknown>; enableJsonFlag?: boolean}

const commands = await Promise.all(
  commandFiles(root).map(async (file) => {
    const id = path.relative(root, file).replace(/\.ts$/, '').split(path.sep).join(' ')
    const mod = (await import(file)) as {default: CommandClass}
    return {id, file, cmd: mod.default}
  }),
)

function exampleText(e: unknown): string {
  const raw = typeof e === 'string' ? e : (e as {command: string}).command
  return raw.replace(/<%=\s*config\.bin\s*%>/g, 'steep-repl')
}

describe('--help examples', () => {
  it('finds the commands', () => {
    expect(commands.length).toBeGreaterThanOrEqual(40)
    expect(commands.map((c) => c.id)).toContain('demo')
    expect(commands.map((c) => c.id)).toContain('snapshot generate')
  })

  it('splits like a shell', () => {
    expect(commandWords(shellSplit(`cat x.csv | steep-repl walrus simulate --samples - > out.json 2> err.log`))).toEqual(['steep-repl', 'walrus', 'simulate', '--samples', '-'])
    expect(shellSplit(`a -d "host=db1 dbname=app" --tables '"Inventory"."StockLevel"' x\\ y`)).toEqual(['a', '-d', 'host=db1 dbname=app', '--tables', '"Inventory"."StockLevel"', 'x y'])
  })

  for (const {id, cmd} of commands) {
    describe(id, () => {
      it('has a summary and at least one example', () => {
        expect(cmd.summary, `${id}: static summary`).toBeTruthy()
        expect(cmd.examples?.length ?? 0, `${id}: static examples`).toBeGreaterThan(0)
      })
      for (const ex of cmd.examples ?? []) {
        const text = exampleText(ex)
        it(`parses: ${text}`, async () => {
          const words = commandWords(shellSplit(text))
          expect(words[0]).toBe('steep-repl')
          const names = [id, ...(cmd.aliases ?? []).map((a) => a.replace(/:/g, ' '))].map((n) => n.split(' '))
          const name = names.find((n) => n.every((w, i) => words[1 + i] === w))
          expect(name, `${text} does not start with "steep-repl ${id}"`).toBeDefined()
          const argv = words.slice(1 + name!.length)
          const flags = {...(cmd.baseFlags ?? {}), ...(cmd.flags ?? {}), ...(cmd.enableJsonFlag ? {json: Flags.boolean()} : {})}
          // Flags read from the environment must not make an example pass or fail.
          const saved = {...process.env}
          for (const k of Object.keys(process.env)) if (k.startsWith('STEEP_REPL_') || k.startsWith('PG')) delete process.env[k]
          try {
            await expect(Parser.parse(argv, {flags: flags as never, args: (cmd.args ?? {}) as never, strict: cmd.strict ?? true})).resolves.toBeDefined()
          } finally {
            process.env = saved
          }
        })
      }
    })
  }
})

// The README's set-up and tour commands are examples too: each must parse with its command's flags.
describe('README commands', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const head = readme.slice(0, readme.indexOf('## Commands'))
  const lines = [...head.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/^#\s+/, '').replace(/\s+#\s.*$/, '').replace(/&\s*$/, '').trim())
    .map((l) => l.replace(/^npx /, '').replace(/^npm install && npx /, ''))
    .filter((l) => l.startsWith('steep-repl '))
  it('has a tour', () => expect(lines.length).toBeGreaterThanOrEqual(10))
  for (const line of lines) {
    it(`parses: ${line}`, async () => {
      const words = commandWords(shellSplit(line))
      const match = commands
        .map((c) => ({...c, name: [c.id, ...(c.cmd.aliases ?? [])].map((n) => n.split(' ')).find((n) => n.every((w, i) => words[1 + i] === w))}))
        .filter((c) => c.name)
        .sort((a, b) => b.name!.length - a.name!.length)[0]
      if (!match && words[1] === 'autocomplete') return // oclif's plugin, not ours
      expect(match, `no command for: ${line}`).toBeDefined()
      const {cmd} = match!
      const flags = {...(cmd.baseFlags ?? {}), ...(cmd.flags ?? {}), ...(cmd.enableJsonFlag ? {json: Flags.boolean()} : {})}
      await expect(Parser.parse(words.slice(1 + match!.name!.length), {flags: flags as never, args: (cmd.args ?? {}) as never, strict: cmd.strict ?? true})).resolves.toBeDefined()
    })
  }
})
