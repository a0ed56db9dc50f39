import {describe, expect, it} from 'vitest'
import {overallPercent, phasePercent, ProgressTracker} from '../../src/direct/progress-model.js'
import {ProgressPublisher} from '../../src/direct/progress.js'
import {
  byteLength,
  decodeProgress,
  ENDED_MAX_IDS,
  ENDED_PREFIX,
  encodeProgress,
  endedMessageNames,
  MAX_PAYLOAD_BYTES,
  parseEndedMessage,
  parseWorkMessage,
  progressSchema,
} from '../../src/direct/progress-schema.js'

function clock(start = 1_000_000) {
  let t = start
  return {now: () => t, advance: (ms: number) => (t += ms)}
}

describe('ProgressTracker', () => {
  it('weights phases into the overall percent and reports phase percent from bytes, rows or items', () => {
    const c = clock()
    const t = new ProgressTracker('7', 'noop', 1, c.now)
    t.plan([{name: 'schema', weight: 10}, {name: 'data', weight: 80}, {name: 'indexes', weight: 10}])
    t.startPhase('schema')
    t.startPhase('data', {bytes: 1000})
    t.advance({bytes: 500, rows: 5})
    const p = t.snapshot()
    expect(p.phases.map((x) => [x.name, x.state, x.percent])).toEqual([
      ['schema', 'done', 100],
      ['data', 'running', 50],
      ['indexes', 'pending', 0],
    ])
    expect(p.percent).toBe(50) // 10 + 80 * 0.5
    expect(p.phase).toBe('data')
    expect(p.bytes).toBe(500)
    expect(p.bytesTotal).toBe(1000)
    expect(p.rows).toBe(5)
    expect(p.rowsTotal).toBeNull()
    expect(progressSchema.safeParse(p).success).toBe(true)
    expect(t.snapshot('complete').percent).toBe(100)
  })

  it('computes the rate over a sliding window and the ETA of the running phase', () => {
    const c = clock()
    const t = new ProgressTracker('1', 'noop', 1, c.now)
    t.startPhase('data', {bytes: 10_000})
    t.snapshot()
    for (let i = 0; i < 10; i++) {
      c.advance(500)
      t.advance({bytes: 250})
    }
    const p = t.snapshot()
    expect(p.rate).toBe(500) // 2500 bytes in 5 s
    expect(p.eta).toBe(15) // 7500 left at 500 B/s
    expect(p.elapsed).toBe(5)
  })

  it('sends items that are running or changed since the last payload, then forgets finished ones', () => {
    const t = new ProgressTracker('1', 'noop', 1, clock().now)
    t.startPhase('copy', {items: 3})
    t.startItem('a', {label: 'public.a', bytesTotal: 10})
    t.startItem('b')
    t.advance({bytes: 10}, 'a')
    t.finishItem('a')
    const p1 = t.snapshot()
    expect(p1.items.map((i) => [i.key, i.state, i.bytes])).toEqual([
      ['a', 'done', 10],
      ['b', 'running', 0],
    ])
    expect(p1.itemsDone).toBe(1)
    expect(p1.phases[0]!.itemsDone).toBe(1)
    const p2 = t.snapshot()
    expect(p2.items.map((i) => i.key)).toEqual(['b'])
    t.endPhase()
    const p3 = t.snapshot()
    expect(p3.items).toEqual([expect.objectContaining({key: 'b', state: 'done'})])
    expect(p3.phases[0]!.state).toBe('done')
    expect(p3.seq).toBe(3)
  })

  it('throttles: urgent changes at once, moving bytes at most every minInterval, idle keepalives', () => {
    const c = clock()
    const t = new ProgressTracker('1', 'noop', 1, c.now, {minIntervalMs: 200, idleIntervalMs: 2000, rateWindowMs: 5000, firstDelayMs: 100})
    t.startPhase('copy')
    expect(t.dueIn()).toBe(100) // the first payload waits a little: short jobs publish only their end
    c.advance(100)
    expect(t.dueIn()).toBe(0)
    t.snapshot()
    expect(t.dueIn()).toBe(2000) // nothing changed: only the keepalive
    c.advance(50)
    t.advance({bytes: 1})
    expect(t.dueIn()).toBe(150) // bytes moved: within 200 ms of the last one, so at least 2 per second
    c.advance(150)
    expect(t.dueIn()).toBe(0)
    t.snapshot()
    t.startPhase('finish')
    expect(t.dueIn()).toBe(0) // phase change: urgent
  })

  it('phasePercent and overallPercent handle missing totals and skipped phases', () => {
    const base = {bytes: 0, bytesTotal: null, rows: 0, rowsTotal: null, itemsDone: 0, itemsTotal: null}
    expect(phasePercent({...base, state: 'running'})).toBeNull()
    expect(phasePercent({...base, state: 'running', rows: 3, rowsTotal: 4})).toBe(75)
    expect(phasePercent({...base, state: 'running', itemsDone: 1, itemsTotal: 4})).toBe(25)
    expect(phasePercent({...base, state: 'running', bytesTotal: 0})).toBe(100)
    expect(phasePercent({...base, state: 'skipped'})).toBe(100)
    expect(overallPercent([])).toBeNull()
    expect(overallPercent([{...base, state: 'done', weight: 1}, {...base, state: 'running', weight: 1}])).toBe(50)
  })
})

describe('progress payload encoding', () => {
  function big(n: number, labelLen: number) {
    const t = new ProgressTracker('123', 'snapshot_generate', 1, clock().now)
    t.plan(Array.from({length: 30}, (_, i) => `phase_${i}_${'x'.repeat(150)}`))
    t.startPhase('phase_0_' + 'x'.repeat(150), {items: n})
    for (let i = 0; i < n; i++) t.startItem(`k${i}`, {label: `schema_${i}.${'t'.repeat(labelLen)}`, bytesTotal: 1e12})
    t.message('m'.repeat(5000))
    return t.snapshot()
  }

  it('stays under the NOTIFY limit whatever the item count and label lengths, and says how many it left out', () => {
    for (const [n, len] of [[5, 10], [100, 50], [5000, 300]] as const) {
      const text = encodeProgress(big(n, len))
      expect(byteLength(text)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES)
      const d = decodeProgress(text)
      expect(d.ok).toBe(true)
      if (d.ok) {
        expect(d.payload.items.length + d.payload.itemsOmitted).toBe(n)
        expect(d.payload.message!.length).toBeLessThanOrEqual(200)
      }
    }
  })

  it('counts bytes, not characters (multi-byte labels)', () => {
    const t = new ProgressTracker('1', 'noop', 1, clock().now)
    t.startPhase('copy')
    for (let i = 0; i < 60; i++) t.startItem(`k${i}`, {label: 'таблица_'.repeat(20)})
    const text = encodeProgress(t.snapshot())
    expect(byteLength(text)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES)
    expect(text.length).toBeLessThan(byteLength(text))
  })

  it('decodeProgress rejects what is not a valid payload, with the path of the problem', () => {
    expect(decodeProgress('not json')).toEqual({ok: false, error: 'not JSON'})
    const t = new ProgressTracker('1', 'noop', 1, clock().now)
    const good = t.snapshot()
    const bad = decodeProgress(JSON.stringify({...good, percent: 140}))
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.error).toMatch(/^percent:/)
    expect(decodeProgress(JSON.stringify({...good, job: 'x1'})).ok).toBe(false)
    expect(decodeProgress(good).ok).toBe(true)
  })

  it('parses wake-up and cancel messages on steep_repl_work', () => {
    expect(parseWorkMessage('job:12:noop')).toEqual({kind: 'job', id: '12', operation: 'noop'})
    expect(parseWorkMessage('cancel:12')).toEqual({kind: 'cancel', id: '12'})
    expect(parseWorkMessage('snap_20260101')).toEqual({kind: 'other'})
    expect(parseWorkMessage(undefined)).toEqual({kind: 'other'})
  })

  it('parses ended: messages on steep_repl_progress and finds one id without false matches', () => {
    expect(parseEndedMessage('ended:12,13,140')).toEqual(['12', '13', '140'])
    expect(parseEndedMessage('ended:7')).toEqual(['7'])
    expect(parseEndedMessage('ended:')).toBeNull()
    expect(parseEndedMessage('ended:1,x')).toBeNull()
    expect(parseEndedMessage('{"v":1}')).toBeNull()
    expect(parseEndedMessage(undefined)).toBeNull()
    expect(endedMessageNames('ended:12,13,140', '13')).toBe(true)
    expect(endedMessageNames('ended:12,13,140', '12')).toBe(true)
    expect(endedMessageNames('ended:12,13,140', '140')).toBe(true)
    expect(endedMessageNames('ended:12,13,140', '14')).toBe(false)
    expect(endedMessageNames('ended:12,13,140', '1')).toBe(false)
    expect(endedMessageNames('ended:112', '12')).toBe(false)
    expect(endedMessageNames('{"job":"12","status":"complete"}', '12')).toBe(false)
  })

  it('ENDED_MAX_IDS ids of the largest bigint fit in one NOTIFY', () => {
    const ids = Array.from({length: ENDED_MAX_IDS}, () => '-9223372036854775808'.slice(1))
    expect(byteLength(ENDED_PREFIX + ids.join(','))).toBeLessThan(MAX_PAYLOAD_BYTES)
  })
})

describe('the final document', () => {
  function publisher(now: () => number) {
    const sent: string[] = []
    const local: Array<{status: string}> = []
    const t = new ProgressTracker('9', 'noop', 1, now)
    const p = new ProgressPublisher(
      t,
      async (text) => {
        sent.push(text)
      },
      (x) => local.push(x),
    )
    return {t, p, sent, local}
  }

  it('is slim (no phase or item lists, totals kept) for a job that completed before its first payload', async () => {
    const c = clock()
    const {p, sent} = publisher(c.now)
    p.plan([{name: 'prepare', weight: 5}, {name: 'copy', weight: 95}])
    p.phase('prepare')
    p.phase('copy', {items: 2, bytes: 20, rows: 4})
    p.item('a')
    p.add({bytes: 20, rows: 4}, 'a')
    p.itemDone('a')
    p.endPhase('done')
    c.advance(30)
    const fin = await p.close('complete')
    expect(sent).toEqual([])
    expect(fin.payload).toMatchObject({status: 'complete', percent: 100, phases: [], items: [], bytes: 20, rows: 4, itemsDone: 1, itemsTotal: 2, seq: 1, elapsed: 0})
    expect(progressSchema.safeParse(JSON.parse(fin.encoded)).success).toBe(true)
    expect(byteLength(fin.encoded)).toBeLessThan(500)
  })

  it('keeps the phases when payloads went out before, or when the job failed', async () => {
    const c = clock()
    const a = publisher(c.now)
    a.p.plan(['prepare', 'copy'])
    a.p.phase('prepare')
    await a.p.flush()
    expect(a.sent.length).toBe(1)
    a.p.endPhase('done')
    const done = await a.p.close('complete')
    expect(done.payload.phases.map((ph) => [ph.name, ph.state])).toEqual([
      ['prepare', 'done'],
      ['copy', 'pending'],
    ])
    const b = publisher(c.now)
    b.p.plan(['prepare', 'copy'])
    b.p.phase('copy')
    const failed = await b.p.close('failed', 'boom')
    expect(failed.payload).toMatchObject({status: 'failed', error: 'boom'})
    expect(failed.payload.phases.map((ph) => [ph.name, ph.state])).toEqual([
      ['prepare', 'pending'],
      ['copy', 'failed'],
    ])
  })

  it('never has a negative elapsed time, even when the clock was set back', () => {
    const c = clock()
    const t = new ProgressTracker('1', 'noop', 1, c.now)
    c.advance(-60_000)
    const p = t.snapshot('complete')
    expect(p.elapsed).toBe(0)
    expect(progressSchema.safeParse(p).success).toBe(true)
  })
})
