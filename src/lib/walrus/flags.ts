// The rule's settings as command flags, shared by tune, watch and simulate. Each can also come from
// an environment variable (STEEP_REPL_WALRUS_*), so a service unit can carry them.

import {Flags} from '@oclif/core'
import {parseDuration} from '../duration.js'
import {DEFAULT_SETTINGS, type RuleSettings, validateSettings} from './rule.js'
import {parseSizeMb} from './size.js'

const env = (name: string) => `STEEP_REPL_WALRUS_${name}`

export const ruleFlags = {
  threshold: Flags.integer({
    summary: `Requested checkpoints per interval that trigger a grow (default ${DEFAULT_SETTINGS.threshold}).`,
    env: env('THRESHOLD'),
    helpGroup: 'RULE',
  }),
  max: Flags.string({
    summary: `Largest max_wal_size to set, e.g. 4GB or 8192 (MB) (default ${DEFAULT_SETTINGS.maxMb}MB).`,
    env: env('MAX'),
    helpValue: 'SIZE',
    helpGroup: 'RULE',
  }),
  min: Flags.string({
    summary: `Smallest max_wal_size a shrink may set (default ${DEFAULT_SETTINGS.minMb}MB).`,
    env: env('MIN'),
    helpValue: 'SIZE',
    helpGroup: 'RULE',
  }),
  shrink: Flags.boolean({
    summary: 'Shrink after quiet intervals (--no-shrink to only grow).',
    allowNo: true,
    default: true,
    helpGroup: 'RULE',
  }),
  'shrink-factor': Flags.string({
    summary: `Factor of a shrink, 0.01 to 0.99 (default ${DEFAULT_SETTINGS.shrinkFactor}).`,
    env: env('SHRINK_FACTOR'),
    helpGroup: 'RULE',
  }),
  'shrink-intervals': Flags.integer({
    summary: `Quiet intervals before a shrink (default ${DEFAULT_SETTINGS.shrinkIntervals}).`,
    env: env('SHRINK_INTERVALS'),
    helpGroup: 'RULE',
  }),
  cooldown: Flags.string({
    summary: `Least time between two changes, e.g. 5min; 0 disables (default ${DEFAULT_SETTINGS.cooldownSec}s).`,
    env: env('COOLDOWN'),
    helpValue: 'DURATION',
    helpGroup: 'RULE',
  }),
  'max-changes-per-hour': Flags.integer({
    summary: `Changes allowed per hour; 0 stops all automatic changes (default ${DEFAULT_SETTINGS.maxChangesPerHour}).`,
    env: env('MAX_CHANGES_PER_HOUR'),
    helpGroup: 'RULE',
  }),
}

export interface RuleFlagValues {
  threshold?: number
  max?: string
  min?: string
  shrink?: boolean
  'shrink-factor'?: string
  'shrink-intervals'?: number
  cooldown?: string
  'max-changes-per-hour'?: number
  'dry-run'?: boolean
}

/** The `walrus:` section of the config file, as it may be written there. */
export interface WalrusConfig {
  threshold?: number
  max?: string | number
  min?: string | number
  shrink?: boolean
  shrink_factor?: number
  shrink_intervals?: number
  cooldown?: string | number
  max_changes_per_hour?: number
}

/**
 * Fills the flags the user did not give (on the command line or in STEEP_REPL_WALRUS_*) from the
 * config file's walrus section. `shrinkGiven`: whether --shrink/--no-shrink was on the command line
 * (the flag always has a value).
 */
export function withConfig(f: RuleFlagValues, c: WalrusConfig | undefined, shrinkGiven: boolean): RuleFlagValues {
  if (!c) return f
  const str = (v: string | number | undefined) => (v === undefined ? undefined : String(v))
  return {
    ...f,
    threshold: f.threshold ?? c.threshold,
    max: f.max ?? str(c.max),
    min: f.min ?? str(c.min),
    shrink: shrinkGiven || c.shrink === undefined ? f.shrink : c.shrink,
    'shrink-factor': f['shrink-factor'] ?? str(c.shrink_factor),
    'shrink-intervals': f['shrink-intervals'] ?? c.shrink_intervals,
    cooldown: f.cooldown ?? (typeof c.cooldown === 'number' ? `${c.cooldown}s` : c.cooldown),
    'max-changes-per-hour': f['max-changes-per-hour'] ?? c.max_changes_per_hour,
  }
}

/** The settings a walrus command runs with: flags, then STEEP_REPL_WALRUS_*, then the config file. */
export function settingsFor(f: RuleFlagValues, c: WalrusConfig | undefined, argv: string[]): RuleSettings {
  return settingsFromFlags(withConfig(f, c, argv.some((a) => a === '--shrink' || a === '--no-shrink')))
}

/** The validated rule settings from the flags (UsageError, exit 2, on bad input). */
export function settingsFromFlags(f: RuleFlagValues): RuleSettings {
  let shrinkFactor: number | undefined
  if (f['shrink-factor'] !== undefined) {
    shrinkFactor = Number(f['shrink-factor'])
    if (!/^\s*\d*\.?\d+\s*$/.test(f['shrink-factor'])) shrinkFactor = Number.NaN
  }
  let cooldownSec: number | undefined
  if (f.cooldown !== undefined) {
    const ms = parseDuration(f.cooldown, '--cooldown')
    cooldownSec = ms / 1000
  }
  return validateSettings({
    threshold: f.threshold,
    maxMb: f.max === undefined ? undefined : parseSizeMb(f.max, '--max'),
    minMb: f.min === undefined ? undefined : parseSizeMb(f.min, '--min'),
    shrinkEnabled: f.shrink,
    shrinkFactor,
    shrinkIntervals: f['shrink-intervals'],
    cooldownSec,
    maxChangesPerHour: f['max-changes-per-hour'],
    dryRun: f['dry-run'] ?? false,
  })
}
