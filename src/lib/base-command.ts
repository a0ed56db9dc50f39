// The base of every command: --json (oclif's enableJsonFlag), --debug, --config, the exit codes
// and error rendering of DESIGN.md, redaction of everything printed, and connection resolution.

import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import {ExitCode, isConnectionFailure, SteepError} from './errors.js'
import type {LoadedConfig} from './connection/config-file.js'
import {looksLikeKeyValue, looksLikeUrl} from './connection/conninfo.js'
import {type ConnParams, resolveConnection} from './connection/resolve.js'
import {redact, redactValue} from './redact.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** --db/-d, shared by every command that talks to one server. */
export const dbFlag = Flags.string({
  char: 'd',
  summary: 'Connection: a postgres:// URL, a key=value string, or a name from the config file.',
  description: 'When absent, the PG* environment variables and libpq defaults apply, as for psql.',
  helpValue: 'CONN',
})

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    config: Flags.string({
      summary: 'Config file with named connections (default: $STEEP_REPL_CONFIG or ~/.config/steep-repl/config.yaml).',
      helpValue: 'FILE',
      helpGroup: 'GLOBAL',
    }),
    debug: Flags.boolean({summary: 'Print stack traces with errors.', helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private loadedConfig?: LoadedConfig

  public override async init(): Promise<void> {
    await super.init()
    const {flags, args} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** The config file (--config, $STEEP_REPL_CONFIG or the XDG default), read once when asked for. */
  protected async configFile(): Promise<LoadedConfig> {
    if (!this.loadedConfig) {
      const {loadConfig} = await import('./connection/config-file.js')
      this.loadedConfig = loadConfig(this.flags.config)
    }
    return this.loadedConfig
  }

  /** Resolves a connection flag value (or the environment when absent). */
  protected async connection(value: string | undefined, flag = '--db'): Promise<ConnParams> {
    const isName = value !== undefined && !looksLikeUrl(value) && !looksLikeKeyValue(value)
    if (!isName) return resolveConnection({db: value, flag})
    // The config file (yaml + zod) is loaded only when a connection name is used: startup stays lean.
    const {namedConnectionInfo} = await import('./connection/config-file.js')
    return resolveConnection({db: value, flag, config: await this.configFile(), named: namedConnectionInfo})
  }

  /** A line of human information on stderr (also shown with --json; never on stdout). */
  protected note(message: string): void {
    process.stderr.write(redact(message) + '\n')
  }

  public override log(message = '', ...args: unknown[]): void {
    super.log(redact(message), ...args.map((a) => (typeof a === 'string' ? redact(a) : a)))
  }

  public override logJson(json: unknown): void {
    super.logJson(redactValue(json))
  }

  protected override toErrorJson(err: unknown): unknown {
    const e = classify(err)
    return {error: {code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode}}
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<never> {
    if (err instanceof Errors.ExitError) throw err
    const e = classify(err)
    if (this.jsonEnabled?.()) {
      this.logJson(this.toErrorJson(err))
    } else {
      let text = `Error: ${e.message}`
      if (e.hint) text += `\n  ${e.hint}`
      process.stderr.write(redact(text) + '\n')
    }
    if (this.flags?.debug || process.argv.includes('--debug')) process.stderr.write(redact(err.stack ?? String(err)) + '\n')
    // ExitError makes oclif exit with the code without printing anything more.
    throw new Errors.ExitError(e.exitCode)
  }
}

interface Classified {
  code: string
  message: string
  hint?: string
  exitCode: number
}

export function classify(err: unknown): Classified {
  if (err instanceof SteepError) return {code: err.code, message: redact(err.message), hint: err.hint, exitCode: err.exitCode}
  if (err instanceof Errors.ExitError) return {code: 'exit', message: '', exitCode: err.oclif.exit ?? ExitCode.error}
  const e = err as Error & {oclif?: {exit?: number}; code?: string; detail?: string; hint?: string}
  // oclif's flag and argument parse errors
  if (e instanceof Errors.CLIError && (e.name.endsWith('Error') && /Parse|Flag|Arg|Validation/i.test(e.constructor.name))) {
    return {code: 'usage', message: redact(e.message), exitCode: ExitCode.usage}
  }
  if (e instanceof Errors.CLIError) {
    const exit = e.oclif?.exit
    return {code: 'error', message: redact(e.message), exitCode: exit === 2 ? ExitCode.usage : exit ?? ExitCode.error}
  }
  // The connection was lost mid-command (server restarted or stopped, backend terminated): the
  // documented exit 6, as for a server that refused the connection. File errors (ENOENT with a path) are not.
  if (isConnectionFailure(err) && typeof (e as {path?: unknown}).path !== 'string') {
    const sqlstate = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? ` (SQLSTATE ${e.code})` : ''
    return {code: 'connection', message: redact(`lost the connection to the server: ${e.message}${sqlstate}`), hint: 'Check that the server is up, then run the command again (a stopped snapshot apply continues with --resume; a job left running is retried by a worker when its lease expires).', exitCode: ExitCode.connection}
  }
  // An error from PostgreSQL: keep its SQLSTATE, detail and hint.
  if (e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
    const extra = [e.detail, e.hint].filter(Boolean).join(' ')
    return {code: `sqlstate_${e.code}`, message: redact(`${e.message} (SQLSTATE ${e.code})`), hint: extra ? redact(extra) : undefined, exitCode: ExitCode.error}
  }
  return {code: 'error', message: redact(e?.message ?? String(err)), exitCode: ExitCode.error}
}
