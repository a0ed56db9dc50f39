import {describe, expect, it} from 'vitest'
import {decideRun, exitCodeForStatus, parseDuration} from '../../src/direct/mode.js'
import {ProgressTracker} from '../../src/direct/progress-model.js'
import {chooseProgressMode} from '../../src/lib/ui/progress.js'
import {formatDuration, phaseTitle, plainLines, plainState, textBar} from '../../src/lib/ui/progress-format.js'

describe('how a job command runs', () => {
  it('direct, follow a live worker, run here when none, or only queue', () => {
    expect(decideRun({direct: true, noWait: false, liveWorkers: 3})).toEqual({run: 'direct', why: 'flag'})
    expect(decideRun({direct: false, noWait: false, liveWorkers: 1})).toEqual({run: 'follow'})
    expect(decideRun({direct: false, noWait: false, liveWorkers: 0})).toEqual({run: 'direct', why: 'no-worker'})
    expect(decideRun({direct: false, noWait: true, liveWorkers: 0})).toEqual({run: 'queue', workers: 0})
    expect(() => decideRun({direct: true, noWait: true, liveWorkers: 0})).toThrow(/do not go together/)
  })

  it('parses durations and maps statuses to exit codes', () => {
    expect(parseDuration('90')).toBe(90)
    expect(parseDuration('1h30m')).toBe(5400)
    expect(parseDuration('250ms')).toBe(0.25)
    expect(() => parseDuration('soon')).toThrow(/not a duration/)
    expect(() => parseDuration('10x')).toThrow(/not a duration/)
    expect([exitCodeForStatus('complete'), exitCodeForStatus('failed'), exitCodeForStatus('cancelled')]).toEqual([0, 1, 4])
  })

  it('chooses the display: NDJSON only when asked, nothing with --json, bars only on a terminal', () => {
    expect(chooseProgressMode({json: true, progressJson: false, interactive: true})).toBe('silent')
    expect(chooseProgressMode({json: true, progressJson: true, interactive: false})).toBe('ndjson')
    expect(chooseProgressMode({json: false, progressJson: false, interactive: true})).toBe('tty')
    expect(chooseProgressMode({json: false, progressJson: false, interactive: false})).toBe('plain')
  })
})

describe('plain progress lines', () => {
  it('prints one line per meaningful change and nothing for the rest', () => {
    let now = 0
    const t = new ProgressTracker('9', 'noop', 1, () => now)
    const s = plainState()
    const lines: string[] = []
    const feed = (status: 'running' | 'complete' = 'running') => lines.push(...plainLines(s, t.snapshot(status)))
    t.plan(['copy', 'finish'])
    t.startPhase('copy', {bytes: 1000})
    t.startItem('a', {label: 'public.a'})
    feed()
    for (let i = 0; i < 20; i++) {
      now += 100
      t.advance({bytes: 10}, 'a')
      feed()
    }
    t.finishItem('a')
    t.startPhase('finish')
    feed()
    t.endPhase()
    feed('complete')
    expect(lines).toEqual([
      'job 9 noop: copy started',
      // two phases of equal weight: 20 % of copy is 10 % of the job; 10 B every 100 ms
      'job 9 noop: 10% (copy) 200 B / 1000 B, 100 B/s, ETA 8s',
      'job 9 noop: finish started',
      'job 9 noop:   public.a done (200 B)',
      'job 9 noop: copy done (200 B / 1000 B)',
      'job 9 noop: 50% (finish) 200 B / 1000 B, 100 B/s',
      'job 9 noop: finish done',
      'job 9 noop: complete in 2s (200 B / 1000 B)',
    ])
  })

  it('formats bars, titles and durations', () => {
    expect(textBar(0.5, 10)).toBe('[#####-----]')
    expect(textBar(null, 4)).toBe('[····]')
    expect(formatDuration(3725)).toBe('1h02m')
    expect(formatDuration(75)).toBe('1m15s')
    const t = new ProgressTracker('1', 'noop', 1, () => 0)
    t.startPhase('copy', {bytes: 2048, rows: 10, items: 2})
    t.advance({bytes: 1024, rows: 5})
    const p = t.snapshot()
    expect(phaseTitle(p.phases[0]!, p, 10)).toBe('copy  [#####-----]  50%  1.0 kB / 2.0 kB, 5 / 10 rows  0/2 items')
  })
})
